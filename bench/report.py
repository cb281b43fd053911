"""The figures of a benchmark as one aligned table: metric, value, goal, and whether the goal is met."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    metric: str
    value: str
    goal: str = ""
    met: bool | None = None  # None: information, no goal

    @property
    def result(self) -> str:
        return "" if self.met is None else ("met" if self.met else "MISSED")


def print_table(title: str, figures: list[Figure]) -> None:
    table = [("metric", "value", "goal", "result")] + [(f.metric, f.value, f.goal, f.result) for f in figures]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    print(f"\n{title}")
    for index, row in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))
    print(flush=True)
