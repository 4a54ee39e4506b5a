"""String and bytes literals read as cel-go reads them: what every analysis of our syntax
tree (and any runtime built on it) sees as a literal's value."""

from __future__ import annotations

import pytest

from webhook.policy.cel.expression import CelCompileError, compile_expression
from webhook.policy.cel.syntax import CelSyntaxError, Literal, parse


def literal(source: str) -> Literal:
    node = parse(source)
    assert isinstance(node, Literal), source
    return node


@pytest.mark.parametrize(
    ("source", "value"),
    [
        (r"b'\xff'", b"\xff"),  # one byte, not the UTF-8 of U+00FF
        (r"b'\377'", b"\xff"),
        (r"b'\000\xff'", b"\x00\xff"),
        (r"B'\x00\x7F'", b"\x00\x7f"),
        ("b'ÿ'", b"\xc3\xbf"),  # a character written as itself is its UTF-8
        (r"b'\a\b\f\n\r\t\v\\\'\"\`\?'", b"\a\b\f\n\r\t\v\\'\"`?"),
        (r"br'\xff'", b"\\xff"),  # raw: no escapes
        (r"b'''a\x41'''", b"aA"),
    ],
)
def test_bytes_literals(source: str, value: bytes) -> None:
    node = literal(source)
    assert node.kind == "bytes"
    assert node.value == value


@pytest.mark.parametrize(
    ("source", "value"),
    [
        (r"'\xff'", "ÿ"),  # in a string, \x and octal escapes are code points
        (r"'\377'", "ÿ"),
        (r"'\u00e9\U0001F600'", "é😀"),
        (r"'\`\?'", "`?"),
        (r"r'\d+'", "\\d+"),
        (r'"""two\nlines"""', "two\nlines"),
        ("'''a\r\nb'''", "a\nb"),  # newlines normalise, as in cel-go
    ],
)
def test_string_literals(source: str, value: str) -> None:
    node = literal(source)
    assert node.kind == "string"
    assert node.value == value


@pytest.mark.parametrize(
    ("source", "why"),
    [
        (r"'\d' == object.x", r"invalid escape \\d"),  # a regex escape is '\\d' or r'\d'
        (r"b'\u00ff' == object.x", r"invalid escape \\u in a bytes literal"),
        (r"'\08' == object.x", "invalid octal escape"),
        (r"'\x4' == object.x", r"invalid escape \\x4"),
        (r"'\uD800' == object.x", "invalid code point U\\+D800"),
    ],
)
def test_escapes_cel_does_not_have_are_refused(source: str, why: str) -> None:
    with pytest.raises(CelSyntaxError, match=why):
        parse(source)
    with pytest.raises(CelCompileError):  # in the binding's words, where it refuses too
        compile_expression(source)
