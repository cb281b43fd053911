"""RUNWIRE_TOOLS_CONFIG: what a valid file gives, and every error naming its line."""

from pathlib import Path

import pytest

from runwire.tools.mcp.config import HttpServer, StdioServer, ToolsConfigError, load

ENVIRON = {
    "TOKEN": "s3cret",
    "HOME": "/home/ada",
    "PATH": "/usr/bin:/venv/bin:/bin",
    "RUNWIRE_LLM_API_KEY": "sk-never-passed-on",
}


def parse(tmp_path: Path, text: str) -> tuple[StdioServer | HttpServer, ...]:
    path = tmp_path / "tools.toml"
    path.write_text(text)
    return load(path, ENVIRON, scripts=Path("/venv/bin")).servers


def refusal(tmp_path: Path, text: str) -> ToolsConfigError:
    with pytest.raises(ToolsConfigError) as raised:
        parse(tmp_path, text)
    return raised.value


def test_no_file_no_servers() -> None:
    assert load(None, ENVIRON).servers == ()


def test_stdio_and_http_servers_with_variables(tmp_path: Path) -> None:
    weather, search = parse(
        tmp_path,
        """
# comment
[mcp.weather]
command = "python"
args = ["-m", "weather_server", "--key=${TOKEN}"]
env = { WEATHER_KEY = "${TOKEN}", LITERAL = "$${TOKEN}" }
cwd = "/srv"

[mcp.search]
url = "http://127.0.0.1:8700/mcp"
headers = { Authorization = "Bearer ${TOKEN}" }
""",
    )
    assert isinstance(weather, StdioServer) and isinstance(search, HttpServer)
    assert (weather.name, weather.command, weather.args, weather.cwd) == (
        "weather",
        "python",
        ("-m", "weather_server", "--key=s3cret"),
        "/srv",
    )
    assert weather.env == {"WEATHER_KEY": "s3cret", "LITERAL": "${TOKEN}"}
    # The command inherits the environment but Runwire's own settings (which hold its secrets), its `env` added, and
    # the bin directory of Runwire's virtual environment first on its PATH.
    assert weather.environment == {
        "TOKEN": "s3cret",
        "HOME": "/home/ada",
        "PATH": "/venv/bin:/usr/bin:/bin",
        "WEATHER_KEY": "s3cret",
        "LITERAL": "${TOKEN}",
    }
    assert (search.url, search.headers) == ("http://127.0.0.1:8700/mcp", {"Authorization": "Bearer s3cret"})
    assert "s3cret" not in repr(weather) + repr(search)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('[mcp.a]\ncommand = "x"\nargs = [1', 3, "not valid TOML"),
        ('[mcp.a]\ncommand = "x"\n\n[mcp.b]\ncommand = "y"\ncolor = "red"\n', 6, "unknown key 'color'"),
        ('[mcp.a]\ncommand = "x"\nurl = "http://h/mcp"\n', 1, "either `command`"),
        ("[mcp.a]\nargs = []\n", 1, "either `command`"),
        ('[mcp.a]\ncommand = "x"\nheaders = {}\n', 3, "does not go with `command`"),
        ('[mcp."a.b"]\ncommand = "x"\n', 1, "server name 'a.b'"),
        ('[mcp.a]\ncommand = "x"\n[mcp.b]\nurl = "ftp://h"\n', 4, "http:// or https://"),
        ('[mcp.a]\n\ncommand = "x"\nenv = { K = "${MISSING}" }\n', 4, "${MISSING}, which is not set"),
        ('[mcp.a]\ncommand = "x"\nargs = "one"\n', 3, "`args` must be a list"),
        ('[mcp.a]\ncommand = ""\n', 2, "`command` is empty"),
        ('[servers.a]\ncommand = "x"\n', 1, "unknown section 'servers'"),
        ('[mcp.a]\ncommand = "x"\nargs = [1]\n', 3, "`args` must hold strings"),
    ],
)
def test_errors_name_the_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    error = refusal(tmp_path, text)
    assert error.line == line, str(error)
    assert words in error.message
    assert str(error).startswith(f"{tmp_path / 'tools.toml'}: line {line}: ")


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ToolsConfigError, match="cannot be read"):
        load(tmp_path / "nowhere.toml", ENVIRON)
