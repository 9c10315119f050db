from __future__ import annotations

from typing import Iterable

from .base import Example, Rule, RuleContext
from .finding import Finding


class AnalysisFailed(Rule):
    code = "GL001"
    name = "analysis-failed"
    severity = "error"
    summary = "The model could not be imported, built, captured, estimated or verified."
    what = """
        Reports a model gradlint could not analyse, with the stage that failed (`import`,
        `build`, `capture`, `estimate` or `verify`), the exception in one line and the line of
        your code it came from. A file whose analysis process died is reported the same way, with
        the cause and the phase: `os._exit(0) ... at import`, `killed by SIGSEGV while building
        Net`, `over the 8 GiB memory cap`, or code that kept running past `--timeout`. The other
        models in the file, and the other files, are still analysed.
    """
    why = """
        A model that is silently skipped looks like a clean model. Failing loudly, and pointing at
        the line, keeps a CI run honest.
    """
    fix = """
        Read the message: it is your code's own exception. Typical fixes: install the missing
        package in the environment gradlint runs in; give the class defaults for its constructor
        arguments or name it with arguments (`model.py::Net(depth=4)`); define
        `example_inputs()` in the file when the input shape cannot be inferred; guard script
        code with `if __name__ == "__main__":`; raise `--timeout` or `memory-limit` for a model
        that is slow or big by design.
    """
    references = ["gradlint README, section *What gradlint runs, and where*"]
    INVALID = [
        Example(
            """
            import torch.nn as nn


            class Net(nn.Module):
                def __init__(self, width=16):
                    super().__init__()
                    self.fc = nn.Linear(width, width)
                    raise ValueError("width must be a power of two")

                def forward(self, x):
                    return self.fc(x)
            """,
            line=8,
            note="The constructor raises: GL001 at stage `build`, pointing at the `raise`.",
        )
    ]
    VALID = [
        Example(
            """
            import torch.nn as nn


            class Net(nn.Module):
                def __init__(self, width=16):
                    super().__init__()
                    self.fc = nn.Linear(width, width)

                def forward(self, x):
                    return self.fc(x)
            """
        )
    ]

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        return ()  # produced by the pipeline from the failing stage, see ``from_error``

    def from_error(self, error) -> Finding:  # error: errors.StageError
        msg = f"{error.stage} failed: {error.message}"
        fix = error.hint or " ".join(self.fix.split())
        return self.finding(msg, error.location, fix=fix)
