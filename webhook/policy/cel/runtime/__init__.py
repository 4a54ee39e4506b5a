"""The CEL runtime: the policies' CEL compiled into Python closures (compiler.py) over
CEL's values (values.py), operators (operators.py) and standard functions (builtins.py).
docs/performance.md "Choosing the CEL runtime" says why."""

from webhook.policy.cel.runtime.compiler import (
    Activation,
    Program,
    SharedActivation,
    compile_program,
)
from webhook.policy.cel.runtime.values import (
    CelError,
    CelType,
    MissingKey,
    Optional,
    UInt,
    Unbound,
)

__all__ = [
    "Activation",
    "CelError",
    "CelType",
    "MissingKey",
    "Optional",
    "Program",
    "SharedActivation",
    "UInt",
    "Unbound",
    "compile_program",
]
