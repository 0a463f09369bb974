"""The argparse commands' parser (fentsim-doc, -compare, -rerun, -aggregate, -study-report): a
mistake is one line with "did you mean" and exit status 2, like the Hydra commands."""

from __future__ import annotations

import argparse
import re
import sys
from typing import NoReturn

from sim.errors import did_you_mean

EXIT_USER_ERROR = 2


class ArgumentParser(argparse.ArgumentParser):
    """argparse.ArgumentParser whose errors are one line naming what is allowed."""

    def error(self, message: str) -> NoReturn:
        options = [s for a in self._actions for s in a.option_strings]
        hint = ""
        unknown = re.match(r"unrecognized arguments: (\S+)", message)
        choice = re.match(r"argument (\S+): invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if unknown and unknown.group(1).startswith("-"):
            hint = did_you_mean(unknown.group(1).split("=")[0], options)
        elif choice:
            allowed = [c.strip(" '") for c in choice.group(3).split(",")]
            message = (f"{choice.group(1)}: value {choice.group(2)!r} not allowed"
                       f"{did_you_mean(choice.group(2), allowed)}; allowed: {', '.join(allowed)}")
        print(f"{self.prog}: error: {message}{hint} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
