"""Fields of gpunet's files, each checked for its type and range by a small table.

A reader lists the fields of a file as ``{"training.eta": positive, "rngs": ...}``: a
dotted path into the file's JSON and the check of the value found there. A check takes
the value and the field's name and returns the value (or raises :class:`FieldError`,
naming the field: ``training.eta``, ``rngs[2]``, ``histories[0][3].evaluation_total``).
The reader adds the file's name (:meth:`FieldError.in_file`), so an edited or damaged
file is one ``ValueError`` naming the file and the field, never a ``TypeError`` later.

Everything here is plain JSON values checked with plain Python: no NumPy, no model.
"""

from __future__ import annotations

import json
import math
import os
import stat
from typing import Any, Callable, Mapping, NoReturn, Optional, Sequence, TypeGuard, Union

Check = Callable[[Any, str], Any]
"""``check(value, field) -> value``: the value if it fits, else a :class:`FieldError`."""


class _Missing:
    """A field that is not in the file (``None`` is a value a field may have)."""

    def __repr__(self) -> str:
        return "missing"


MISSING: Any = _Missing()

MAX_PATH_CHARS = 4096
"""The longest path a file may record (Linux's ``PATH_MAX``)."""


class FieldError(ValueError):
    """A field of a file that is not what the file's layout says; ``field`` names it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field

    def in_file(self, path: Any, hint: str = "the file is corrupt or was edited") -> ValueError:
        """The error as a reader reports it: the file, the field, what is wrong."""
        return ValueError(f"{path}: {self}; {hint}.")


def shown(value: Any, width: int = 60) -> str:
    """``value`` as the error shows it: as JSON (``null``, ``true``, ``"3"``: what the
    file says), else its ``repr``, cut to ``width`` characters."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        try:
            text = repr(value)
        except (ValueError, RecursionError):  # an integer of thousands of digits
            text = f"<a {type(value).__name__}>"
    return text if len(text) <= width else text[:width - 5] + " ..."


def fail(field: str, value: Any, expected: str) -> NoReturn:
    """Raise the :class:`FieldError` for ``value`` found where ``expected`` belongs."""
    if value is MISSING:
        raise FieldError(field, f"is missing (it should be {expected})")
    raise FieldError(field, f"is {shown(value)}, not {expected}")


def is_whole(value: Any) -> TypeGuard[int]:
    """A JSON whole number: an ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> TypeGuard[Union[int, float]]:
    """A JSON number: an ``int`` or ``float`` that is not a ``bool``."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_regular_file(path: Any, what: str) -> int:
    """The size of ``path``, a regular file (followed through links); a missing file, a
    directory, a device (``/dev/zero`` never ends) or a pipe (opening one waits for a
    writer) is a ``ValueError`` naming it, before it is opened."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise ValueError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise ValueError(f"cannot read {what} {path} ({exc.strerror or exc}).") from None
    if not stat.S_ISREG(status.st_mode):
        kind = "a directory" if stat.S_ISDIR(status.st_mode) else "a device or pipe"
        raise ValueError(f"{path} is {kind}, not a {what}.")
    return status.st_size


def read_capped(path: Any, what: str, limit: int, hint: str) -> bytes:
    """The bytes of file ``path`` (a regular file: :func:`check_regular_file`), at most
    ``limit`` of them read: a larger file is a ``ValueError`` naming it, ``what`` it is
    not and ``hint`` (what the user may have given instead), before it is read, or once
    ``limit`` bytes are read where the file grew meanwhile."""
    size = check_regular_file(path, what)
    if size > limit:
        raise ValueError(f"{path}: {size:,} bytes, more than a {what} may hold "
                         f"({limit:,}); {hint}")
    try:
        with open(path, "rb") as f:
            raw: bytes = f.read(limit + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {what} {path} ({exc.strerror or exc}).") from None
    if len(raw) > limit:
        raise ValueError(f"{path}: more than {limit:,} bytes; {hint}")
    return raw


# --------------------------------------------------------------------- checks
def whole(low: int = 0, high: Optional[int] = None) -> Check:
    """A whole number from ``low`` (to ``high``, inclusive)."""
    expected = (f"a whole number from {low} to {high}" if high is not None
                else "a positive whole number" if low == 1
                else f"a whole number >= {low}")

    def check(value: Any, field: str) -> int:
        if not is_whole(value) or value < low or (high is not None and value > high):
            fail(field, value, expected)
        return int(value)

    return check


def number(low: Optional[float] = None, above: Optional[float] = None,
           finite: bool = True) -> Check:
    """A number (finite unless ``finite=False``), at least ``low`` or more than
    ``above``."""
    expected = ("a finite number" if finite else "a number") + (
        f" > {above:g}" if above is not None else f" >= {low:g}" if low is not None else "")

    def check(value: Any, field: str) -> Any:
        if (not is_number(value) or (finite and not math.isfinite(value))
                or (low is not None and not value >= low)
                or (above is not None and not value > above)):
            fail(field, value, expected)
        return value

    return check


def boolean(value: Any, field: str) -> bool:
    """``true`` or ``false``."""
    if not isinstance(value, bool):
        fail(field, value, "true or false")
    return value


def choice(*options: Any) -> Check:
    """One of ``options`` (compared by type and value: ``1`` is not ``True``)."""
    expected = "one of " + ", ".join(map(shown, options))

    def check(value: Any, field: str) -> Any:
        if not any(type(value) is type(o) and value == o for o in options):
            fail(field, value, expected)
        return value

    return check


def text(value: Any, field: str) -> str:
    """A string."""
    if not isinstance(value, str):
        fail(field, value, "a string")
    return value


def path_text(value: Any, field: str) -> str:
    """A path: a non-empty string without NUL, at most :data:`MAX_PATH_CHARS` long."""
    if (not isinstance(value, str) or not value or "\0" in value
            or len(value) > MAX_PATH_CHARS):
        fail(field, value, "a path (a non-empty string without NUL)")
    return value


def sha256(value: Any, field: str) -> str:
    """A SHA-256 digest in lowercase hexadecimal."""
    if (not isinstance(value, str) or len(value) != 64
            or any(c not in "0123456789abcdef" for c in value)):
        fail(field, value, "a SHA-256 digest (64 hexadecimal digits)")
    return value


def obj(value: Any, field: str) -> dict[str, Any]:
    """A JSON object (its fields are checked by their own entries)."""
    if not isinstance(value, dict):
        fail(field, value, "a JSON object")
    return value


def anything(value: Any, field: str) -> Any:
    """Any value: one its caller checks itself (a list's items, each by its own rule)."""
    return value


def optional(check: Check) -> Check:
    """``check``, or the field missing or ``null`` (read as ``None``)."""
    def checked(value: Any, field: str) -> Any:
        return None if value is None or value is MISSING else check(value, field)

    return checked


def since(default: Any, check: Check) -> Check:
    """The check of a field added after files were first written: a file without it (an
    older gpunet's) holds ``default``, what its run had (kept as the check's
    ``default``)."""
    def checked(value: Any, field: str) -> Any:
        return default if value is MISSING else check(value, field)

    setattr(checked, "default", default)
    return checked


def list_of(item: Check, length: Optional[int] = None, low: int = 0,
            high: Optional[int] = None) -> Check:
    """A list of ``length`` (or ``low`` to ``high``) items, each checked by ``item``
    and named ``field[i]``."""
    counted = (f"{length}" if length is not None
               else f"{low} or more" if high is None else f"{low} to {high}")
    counted += " item" if counted == "1" else " items"

    def check(value: Any, field: str) -> list[Any]:
        if not isinstance(value, list):
            fail(field, value, f"a list ({counted})")
        n = len(value)
        if (length is not None and n != length) or n < low or (high is not None and n > high):
            raise FieldError(field, f"has {n} item{'' if n == 1 else 's'}, not {counted}")
        return [item(v, f"{field}[{i}]") for i, v in enumerate(value)]

    return check


def object_of(fields: Mapping[str, Check], extra: bool = True) -> Check:
    """A JSON object whose ``fields`` are checked (``extra=False``: and no others)."""
    def check(value: Any, field: str) -> dict[str, Any]:
        obj(value, field)
        if not extra:
            unknown = sorted(set(value) - set(fields))
            if unknown:
                raise FieldError(f"{field}.{unknown[0]}",
                                 f"is not a field gpunet writes here (it writes "
                                 f"{', '.join(fields)})")
        return {**value, **{k: c(value.get(k, MISSING), f"{field}.{k}")
                            for k, c in fields.items()}}

    return check


def sizes(value: Any, field: str) -> list[int]:
    """A network's layer sizes: at least two positive whole numbers."""
    if (not isinstance(value, list) or len(value) < 2
            or not all(is_whole(n) and 1 <= n <= 2**40 for n in value)):
        fail(field, value, "a list of two or more positive layer sizes like [784, 30, 10]")
    return list(value)


# ----------------------------------------------------------- tables of fields
def get(document: Any, path: str) -> Any:
    """The value at dotted ``path`` in ``document`` (:data:`MISSING` if absent); a
    section on the way that is not a JSON object is a :class:`FieldError` naming it."""
    node = document
    parts = path.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, dict):
            fail(".".join(parts[:depth]) or "the file", node, "a JSON object")
        node = node.get(part, MISSING)
        if node is MISSING:
            return MISSING
    return node


def check_fields(document: Any, fields: Mapping[str, Check]) -> dict[str, Any]:
    """Check every ``path -> check`` of ``fields`` in ``document``, in order; the values,
    by path. The first field that does not fit is the :class:`FieldError`."""
    return {path: check(get(document, path), path) for path, check in fields.items()}


def agree(condition: bool, field: str, problem: str) -> None:
    """A field that must agree with another: ``FieldError(field, problem)`` unless
    ``condition``."""
    if not condition:
        raise FieldError(field, problem)


def each(checks: Sequence[Check]) -> Check:
    """Every check of ``checks`` in turn, the value passed on (a field with two rules)."""
    def check(value: Any, field: str) -> Any:
        for c in checks:
            value = c(value, field)
        return value

    return check
