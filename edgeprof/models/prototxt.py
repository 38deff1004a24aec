"""Reader and batch rewriter for Caffe prototxt files (protobuf text format).

Written from scratch so that the host needs neither protobuf nor caffe.proto: it reads the text format
without a schema, the way a user's file is written, so layer types it has never heard of (SSD's PriorBox
and DetectionOutput, Faster R-CNN's `Python` layers) are read like any other message.

Every value keeps where it came from (line, column and character span in the text). That is what lets
`set_batch` change the batch numbers of a user's deploy file and leave every other byte, comments and
formatting included, as the user wrote it. Lines and columns are 1-based and count characters (a tab
is one column).

Deploy files declare their input in one of three ways, all understood by `inputs`:

    input: "data"  input_dim: 10  input_dim: 3  input_dim: 224  input_dim: 224     # style "input_dim"
    input: "data"  input_shape { dim: 10 dim: 3 dim: 224 dim: 224 }                  # style "input_shape"
    layer { type: "Input" top: "data" input_param { shape { dim: 10 ... } } }        # style "input_layer"
"""
from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass, field
from typing import Union

from ..errors import InputError

__all__ = [
    "PrototxtError", "Span", "Scalar", "Field", "Message", "InputDecl",
    "parse", "layers", "inputs", "declared_inputs", "set_batch",
]


class PrototxtError(InputError):
    """A prototxt that cannot be read or does not say what edgeprof needs; str() is "PATH:LINE:COL: message"."""

    def __init__(self, path: str, line: int, column: int, message: str):
        super().__init__(f"{path}:{line}:{column}: {message}")
        self.path = path
        self.line = line
        self.column = column
        self.message = message


@dataclass(frozen=True)
class Span:
    """Where a piece of text sits: character offsets [start, end) and the 1-based line and column of start."""

    start: int
    end: int
    line: int
    column: int


@dataclass(frozen=True)
class Scalar:
    """One scalar value. `value` is the unescaped string for strings, int or float for numbers, and the
    bare word for identifiers (enum values such as MAX, and true/false). `text` is the value as written."""

    value: Union[str, int, float]
    kind: str  # "string", "number" or "identifier"
    text: str
    span: Span


@dataclass
class Field:
    """One occurrence of a field; a repeated field is several Fields with the same name, in file order."""

    name: str
    value: Union[Scalar, "Message"]
    span: Span  # of the field name


@dataclass
class Message:
    """A message (the file itself, or a `name { ... }` block) with its fields in file order."""

    path: str
    span: Span  # of the field name that opened it; the file's root message sits at 1:1
    fields: list[Field] = field(default_factory=list)

    def scalars(self, name: str) -> list[Scalar]:
        return [self._expect(f, Scalar, "a value") for f in self.fields if f.name == name]

    def messages(self, name: str) -> list["Message"]:
        return [self._expect(f, Message, "a { ... } block") for f in self.fields if f.name == name]

    def find(self, name: str) -> Field | None:
        """The first occurrence of field `name` (its span is the field name's, for error messages)."""
        return next((f for f in self.fields if f.name == name), None)

    def scalar(self, name: str) -> Scalar | None:
        found = self.scalars(name)
        return found[0] if found else None

    def message(self, name: str) -> "Message | None":
        found = self.messages(name)
        return found[0] if found else None

    def get(self, name: str, default=None):
        """The value of the first scalar field `name`, or `default` when the field is absent."""
        found = self.scalar(name)
        return default if found is None else found.value

    def error(self, message: str, span: Span | None = None) -> PrototxtError:
        where = span or self.span
        return PrototxtError(self.path, where.line, where.column, message)

    def _expect(self, f: Field, kind: type, what: str):
        if not isinstance(f.value, kind):
            raise self.error(f"'{f.name}' should be {what}", f.span)
        return f.value


# --- tokenizer ---------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<number>-?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fF]?)(?![\w.]))
  | (?P<badnumber>-?\.?\d[\w.+-]*)
  | (?P<identifier>-?[A-Za-z_]\w*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<badstring>["'])
  | (?P<punct>[{}<>\[\]:,;])
""", re.VERBOSE | re.ASCII)

_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.DOTALL)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
                   "\\": "\\", "'": "'", '"': '"', "?": "?"}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    start: int
    end: int


class _Source:
    """The text plus offset -> (line, column) conversion."""

    def __init__(self, text: str, path: str):
        self.text = text
        self.path = path
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def span(self, start: int, end: int) -> Span:
        line = bisect.bisect_right(self._line_starts, start)
        return Span(start, end, line, start - self._line_starts[line - 1] + 1)

    def error(self, offset: int, message: str) -> PrototxtError:
        where = self.span(offset, offset)
        return PrototxtError(self.path, where.line, where.column, message)

    def tokens(self) -> list[_Token]:
        out = []
        pos = 0
        text = self.text
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                raise self.error(pos, f"unexpected character {text[pos]!r}")
            kind = m.lastgroup
            if kind == "badnumber":
                raise self.error(pos, f"malformed number {m.group()!r}")
            if kind == "badstring":
                raise self.error(pos, "unterminated string (strings end on the line they start)")
            if kind not in ("space", "comment"):
                out.append(_Token(kind, m.group(), m.start(), m.end()))
            pos = m.end()
        return out


def _unescape(body: str) -> str:
    def one(m: re.Match) -> str:
        octal, hexa, other = m.groups()
        if octal:
            return chr(int(octal, 8))
        if hexa:
            return chr(int(hexa, 16))
        return _SIMPLE_ESCAPES.get(other, "\\" + other)
    return _ESCAPE.sub(one, body)


def _number(text: str) -> int | float:
    body = text[1:] if text.startswith("-") else text
    if body[:2] in ("0x", "0X"):
        value = int(body, 16)
    elif re.fullmatch(r"\d+", body):
        value = int(body)
    else:
        value = float(body.rstrip("fF"))
    return -value if text.startswith("-") else value


# --- parser ------------------------------------------------------------------------------------------

_CLOSE = {"{": "}", "<": ">"}


class _Parser:
    def __init__(self, text: str, path: str):
        self.src = _Source(text, path)
        self.toks = self.src.tokens()
        self.i = 0

    def peek(self, ahead: int = 0) -> _Token | None:
        j = self.i + ahead
        return self.toks[j] if j < len(self.toks) else None

    def take(self) -> _Token:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def at(self, *texts: str, ahead: int = 0) -> bool:
        tok = self.peek(ahead)
        return tok is not None and tok.kind == "punct" and tok.text in texts

    def error(self, tok: _Token | None, message: str) -> PrototxtError:
        return self.src.error(tok.start if tok else len(self.src.text), message)

    def parse(self) -> Message:
        path = self.src.path
        root = Message(path, self.src.span(0, 0))
        # An explicit stack rather than recursion, so that no nesting depth (a hostile file's
        # included) ends in a RecursionError.
        stack: list[tuple[Message, _Token | None]] = [(root, None)]
        while True:
            tok = self.peek()
            current, opener = stack[-1]
            if tok is None:
                if opener is not None:
                    raise self.error(opener, f"'{opener.text}' is never closed (end of file reached)")
                return root
            if tok.kind == "punct" and tok.text in "}>":
                if opener is None:
                    raise self.error(tok, f"unmatched '{tok.text}'")
                if tok.text != _CLOSE[opener.text]:
                    where = self.src.span(opener.start, opener.end)
                    raise self.error(tok, f"expected '{_CLOSE[opener.text]}' to close the "
                                          f"'{opener.text}' of line {where.line}, found '{tok.text}'")
                self.take()
                stack.pop()
                self.skip_separator()
                continue
            if tok.kind != "identifier" or tok.text.startswith("-"):
                raise self.error(tok, f"expected a field name, found {tok.text!r}")
            name = self.take()
            name_span = self.src.span(name.start, name.end)
            has_colon = self.at(":")
            if has_colon:
                self.take()
            if self.at("{", "<"):
                opener = self.take()
                child = Message(path, name_span)
                current.fields.append(Field(name.text, child, name_span))
                stack.append((child, opener))
                continue
            if not has_colon:
                raise self.error(self.peek(), f"expected ':' or '{{' after field name '{name.text}'")
            if self.at("["):
                for value in self.scalar_list(name):
                    current.fields.append(Field(name.text, value, name_span))
            else:
                current.fields.append(Field(name.text, self.scalar(name), name_span))
            self.skip_separator()

    def skip_separator(self) -> None:
        if self.at(",", ";"):
            self.take()

    def scalar(self, name: _Token) -> Scalar:
        tok = self.peek()
        missing = tok is None or tok.kind == "punct"
        # `num_output:` followed by the next field: the word after the colon is a field name, not a value.
        missing = missing or (tok.kind == "identifier" and self.at(":", "{", "<", ahead=1))
        if missing:
            raise self.error(name, f"missing value for '{name.text}'")
        self.take()
        if tok.kind == "string":
            # Adjacent string literals are one value, as in C and in protobuf's text format.
            parts, end = [_unescape(tok.text[1:-1])], tok.end
            while self.peek() is not None and self.peek().kind == "string":
                nxt = self.take()
                parts.append(_unescape(nxt.text[1:-1]))
                end = nxt.end
            return Scalar("".join(parts), "string", self.src.text[tok.start:end], self.src.span(tok.start, end))
        value = _number(tok.text) if tok.kind == "number" else tok.text
        return Scalar(value, tok.kind, tok.text, self.src.span(tok.start, tok.end))

    def scalar_list(self, name: _Token) -> list[Scalar]:
        opener = self.take()
        values: list[Scalar] = []
        while not self.at("]"):
            if self.peek() is None:
                raise self.error(opener, "'[' is never closed (end of file reached)")
            if self.at("{", "<"):
                raise self.error(self.peek(), f"lists of messages are not supported ('{name.text}')")
            values.append(self.scalar(name))
            if self.at(","):
                self.take()
            elif self.peek() is not None and not self.at("]"):
                raise self.error(self.peek(), f"expected ',' or ']' in the list of '{name.text}'")
        self.take()
        return values


def parse(text: str, path: str = "<prototxt>") -> Message:
    """Parse prototxt `text`; `path` names it in error messages. Raises PrototxtError."""
    return _Parser(text, path).parse()


# --- nets --------------------------------------------------------------------------------------------

def layers(msg: Message) -> list[Message]:
    """The net's layers in file order, both `layer` blocks and legacy (V1) `layers` blocks."""
    return [msg._expect(f, Message, "a { ... } block") for f in msg.fields if f.name in ("layer", "layers")]


@dataclass
class InputDecl:
    """One input blob as the file declares it. `dim_spans[i]` locates `dims[i]` in the text."""

    name: str
    dims: list[int]
    style: str  # "input_dim", "input_shape" or "input_layer"
    dim_spans: list[Span]
    span: Span  # of the declaring field name: its `input:`, or the Input layer's `layer`


def _dims(owner: Message, scalars: list[Scalar]) -> tuple[list[int], list[Span]]:
    for s in scalars:
        if not isinstance(s.value, int) or s.value < 0:
            raise owner.error(f"a dimension must be a non-negative integer, found {s.text!r}", s.span)
    return [s.value for s in scalars], [s.span for s in scalars]


def inputs(msg: Message) -> list[InputDecl]:
    """The net's inputs, legacy declarations first, then Input layers in file order."""
    decls: list[InputDecl] = []
    names = msg.scalars("input")
    name_spans = [f.span for f in msg.fields if f.name == "input"]
    input_dims = msg.scalars("input_dim")
    input_shapes = msg.messages("input_shape")
    if (input_dims or input_shapes) and not names:
        first = msg.find("input_dim" if input_dims else "input_shape")
        raise msg.error("input_dim/input_shape without an 'input:' name", first.span)
    if names:
        where = name_spans[0]
        if input_dims and input_shapes:
            raise msg.error("both input_dim and input_shape are given; Caffe accepts only one", where)
        if input_dims:
            if len(input_dims) != 4 * len(names):
                raise msg.error(f"{len(names)} input(s) need {4 * len(names)} input_dim values, "
                                f"found {len(input_dims)}", where)
            for i, name in enumerate(names):
                dims, spans = _dims(msg, input_dims[4 * i:4 * i + 4])
                decls.append(InputDecl(str(name.value), dims, "input_dim", spans, name_spans[i]))
        elif input_shapes:
            if len(input_shapes) != len(names):
                raise msg.error(f"{len(names)} input(s) but {len(input_shapes)} input_shape blocks", where)
            for name, span, shape in zip(names, name_spans, input_shapes):
                dims, spans = _dims(shape, shape.scalars("dim"))
                if not dims:
                    raise shape.error("input_shape has no dim")
                decls.append(InputDecl(str(name.value), dims, "input_shape", spans, span))
        else:
            raise msg.error(f"input {names[0].value!r} has no input_dim or input_shape", where)
    for layer in layers(msg):
        if layer.get("type") != "Input":
            continue
        param = layer.message("input_param")
        shapes = param.messages("shape") if param else []
        tops = layer.scalars("top")
        if not shapes:
            raise layer.error("Input layer without input_param { shape { dim: ... } }")
        # Caffe's InputLayer: one shape for every top, or one shape per top.
        if len(shapes) not in (1, len(tops)):
            raise layer.error(f"Input layer has {len(tops)} tops but {len(shapes)} shapes")
        for i, top in enumerate(tops):
            shape = shapes[0 if len(shapes) == 1 else i]
            dims, spans = _dims(shape, shape.scalars("dim"))
            if not dims:
                raise shape.error("input_param shape has no dim")
            decls.append(InputDecl(str(top.value), dims, "input_layer", spans, layer.span))
    return decls


# Asked for every item of every board of a lab (each result records its input shapes): the text is parsed
# once per process, not per item (1.4 ms of host CPU an item for CIFAR-10 quick on the build VM, more for
# larger nets). The declarations are shared: read them, never change them.
@functools.lru_cache(maxsize=128)
def declared_inputs(text: str, path: str = "<prototxt>") -> tuple[InputDecl, ...]:
    """inputs(parse(text, path)), parsed once per text. Raises PrototxtError."""
    return tuple(inputs(parse(text, path)))


# Pure, and asked for the same (text, batch) by the pre-flight check and by each backend on each board of
# a lab: parsing once per model and batch keeps the host's cost per item small.
@functools.lru_cache(maxsize=128)
def set_batch(text: str, batch: int, path: str = "<prototxt>") -> str:
    """`text` with the batch (first dimension) of every input set to `batch`; every other character,
    comments and layout included, is left as it was."""
    decls = declared_inputs(text, path)
    if not decls:
        raise PrototxtError(path, 1, 1, "no input declaration: expected 'input:' with input_dim or input_shape, "
                                        "or an Input layer with input_param { shape { dim: ... } }")
    if batch < 1:
        first = decls[0].dim_spans[0]
        raise PrototxtError(path, first.line, first.column, f"batch must be at least 1, got {batch}")
    # Several tops of one Input layer can share a shape block: rewrite each number once, from the end
    # so earlier offsets stay valid.
    spans = sorted({(d.dim_spans[0].start, d.dim_spans[0].end) for d in decls}, reverse=True)
    for start, end in spans:
        text = text[:start] + str(batch) + text[end:]
    return text
