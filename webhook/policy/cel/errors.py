"""The errors a policy's CEL raises to the engine and the loader.

A module of their own because CelEvaluationError subclasses RuntimeError, which mypyc
cannot make a native class (the other two keep it company): the image compiles
expression.py (setup.py's COMPILED), and these stay plain Python here while it need not.
"""

from __future__ import annotations


class CelCompileError(ValueError):
    """An expression does not compile; the message says where in the expression."""


class CelEvaluationError(RuntimeError):
    """An expression failed at run time (missing field, wrong type, division by zero...)."""


class CelFunctionError(ValueError):
    """An extension function failed; the message holds types, never the arguments."""
