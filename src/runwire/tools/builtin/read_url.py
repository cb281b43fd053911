from pydantic import Field
from selectolax.lexbor import LexborHTMLParser

from runwire.tools.base import Tool, ToolContext, ToolError, ToolInputs
from runwire.tools.builtin._http import HttpUrl, fetch

_DROPPED_TAGS = ["script", "style", "noscript", "head", "template", "svg"]
_BLOCK_TAGS = (
    "address,article,aside,blockquote,br,dd,div,dl,dt,figcaption,figure,footer,form,h1,h2,h3,h4,h5,h6,"
    "header,hr,li,main,nav,ol,p,pre,section,table,td,th,tr,ul"
)
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


class ReadUrlInputs(ToolInputs):
    url: HttpUrl = Field(description="An http:// or https:// URL.")
    max_chars: int = Field(
        default=20_000, ge=1, le=1_000_000, description="The text is cut after this many characters."
    )


class ReadUrlTool(Tool[ReadUrlInputs]):
    id = "read_url"
    name = "Read URL"
    description = "Fetches a page and returns its title and readable text; HTML markup, scripts and styles are dropped."
    Inputs = ReadUrlInputs

    async def run(self, inputs: ReadUrlInputs, ctx: ToolContext) -> dict[str, object]:
        fetched = await fetch(ctx, "GET", inputs.url, headers={"accept": "text/html, text/*;q=0.9, */*;q=0.5"})
        media_type = fetched.media_type
        if media_type in _HTML_TYPES:
            title, text = _readable(fetched.text)
        elif _is_text(media_type):
            title, text = None, fetched.text
        else:
            raise ToolError("unsupported_content", f"the page is {media_type}, not text")
        return {"title": title, "text": text[: inputs.max_chars]}


def _is_text(media_type: str) -> bool:
    return not media_type or media_type.startswith("text/") or media_type.endswith(("json", "xml", "javascript"))


def _readable(html: str) -> tuple[str | None, str]:
    """The page's title and its visible text, one line per block element."""
    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title")
    title = title_node.text(strip=True) if title_node is not None else None
    tree.strip_tags(_DROPPED_TAGS)
    for node in tree.css(_BLOCK_TAGS):
        node.insert_before("\n")
        node.insert_after("\n")
    lines = (" ".join(line.split()) for line in tree.text().splitlines())
    return title or None, "\n".join(line for line in lines if line)
