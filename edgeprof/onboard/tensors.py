"""edgeprof's tensor files, the one codec: the runners write and read them with torch or numpy on the board,
the host reads them with the standard library alone (edgeprof check compares two frameworks' outputs without
numpy or torch). Python 3.6+; torch and numpy are imported only by the functions that use them.

A file (--input, --dump-output, --weights, --save-weights, --save-input of the runners):
    Line 1: a JSON header {"format": "edgeprof-tensors", "version": 1, "dtype": "float32-le",
    "tensors": [{"name": ..., ["blob": i,] "shape": [...], "offset": bytes}]}, padded with spaces so that
    the line, newline included, is a multiple of 64 bytes. Then the data: each tensor C-ordered
    little-endian float32 at `offset` bytes after the header line. Weights name their layer and carry the
    blob's index in Caffe's order ("blob"); other tensors are named by blob or input name.

The torch side also reads a numpy .npz of weights (arrays named "<layer>/<blob index>") with zipfile, so
that no board needs numpy for torch.
"""
import ast
import ctypes
import json
import sys
import zipfile
from array import array

if __package__:
    from .harness import RunnerError
else:
    from harness import RunnerError

FORMAT = "edgeprof-tensors"
VERSION = 1
DTYPE = "float32-le"


def _count(shape):
    count = 1
    for d in shape:
        count *= int(d)
    return count


def _entries(header_line, what):
    try:
        header = json.loads(header_line.decode("utf-8"))
    except ValueError:
        raise RunnerError("input", "%s: not an edgeprof tensor file (no JSON header line)" % what)
    if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("dtype") != DTYPE:
        raise RunnerError("input", "%s: not an edgeprof float32 tensor file" % what)
    return header["tensors"]


def _write(path, described):
    """described: [(meta, shape, buffer of the C-ordered little-endian float32 bytes)]."""
    entries = []
    offset = 0
    for meta, shape, data in described:
        entry = dict(meta)
        entry["shape"] = [int(d) for d in shape]
        entry["offset"] = offset
        entries.append(entry)
        offset += 4 * _count(shape)
    header = json.dumps({"format": FORMAT, "version": VERSION, "dtype": DTYPE, "tensors": entries}).encode("utf-8")
    header += b" " * (-(len(header) + 1) % 64) + b"\n"
    with open(path, "wb") as f:
        f.write(header)
        for _, shape, data in described:
            if _count(shape):
                f.write(data)


# --- standard library (the host) -----------------------------------------------------------------------

def read_tensors(data):
    """name -> (shape, float32 values in C order as array("f")), from a file's bytes."""
    header_line, _, body = data.partition(b"\n")
    tensors = {}
    for entry in _entries(header_line, "tensor file"):
        values = array("f")
        values.frombytes(body[entry["offset"]:entry["offset"] + 4 * _count(entry["shape"])])
        if sys.byteorder != "little":
            values.byteswap()
        if len(values) != _count(entry["shape"]):
            raise RunnerError("input", "tensor %r is truncated" % entry["name"])
        tensors[entry["name"]] = (list(entry["shape"]), values)
    return tensors


def relative_error(ours, reference):
    """max |ours - reference| / max |reference|: one figure per blob, insensitive to where values are tiny."""
    if len(ours) != len(reference):
        raise ValueError("%d values against %d" % (len(ours), len(reference)))
    scale = max(abs(b) for b in reference)
    worst = max(abs(a - b) for a, b in zip(ours, reference))
    return worst / scale if scale else worst


# --- numpy ---------------------------------------------------------------------------------------------

def read_arrays(path):
    """[(entry, float32 array)] in file order; entry is the header's dict (name, blob, shape, offset)."""
    import numpy as np
    with open(path, "rb") as f:
        line = f.readline()
        data = f.read()
    found = []
    for entry in _entries(line, path):
        shape = [int(d) for d in entry["shape"]]
        offset = int(entry["offset"])
        if offset + 4 * _count(shape) > len(data):
            raise RunnerError("input", "%s: file ends inside the data" % path)
        found.append((entry, np.frombuffer(data, dtype="<f4", count=_count(shape), offset=offset).reshape(shape)))
    return found


def write_arrays(path, named):
    """Write [(meta, array)] (meta: {"name", ["blob"]}) in float32."""
    import numpy as np
    # Not np.ascontiguousarray: it turns a 0-axis blob (a Reduction over every axis) into shape [1].
    arrays = [np.asarray(a, dtype="<f4", order="C") for _, a in named]
    _write(path, [(meta, a.shape, a.tobytes()) for (meta, _), a in zip(named, arrays)])


# --- torch ---------------------------------------------------------------------------------------------

def _check_little_endian():
    # torch tensors are moved as raw memory, and the files are little-endian.
    if sys.byteorder != "little":
        raise RunnerError("input", "tensor files need a little-endian machine")


def _memory(tensor):
    """The bytes of a contiguous CPU tensor, as a writable buffer (no copy)."""
    nbytes = tensor.numel() * tensor.element_size()
    return (ctypes.c_ubyte * nbytes).from_address(tensor.data_ptr())


def _readinto_exact(stream, tensor, what):
    if tensor.numel() == 0:
        return
    view = memoryview(_memory(tensor))
    done = 0
    while done < len(view):
        got = stream.readinto(view[done:])
        if not got:
            raise RunnerError("input", "%s: file ends inside the data" % what)
        done += got


def write_tensors(path, entries):
    """Write [(meta, torch tensor)] (meta: {"name", ["blob"]}) in float32."""
    import torch
    _check_little_endian()
    tensors = [t.detach().to("cpu", torch.float32).contiguous() for _, t in entries]
    _write(path, [(meta, tensor.shape, _memory(tensor) if tensor.numel() else b"")
                  for (meta, _), tensor in zip(entries, tensors)])


class TensorFile(object):
    """An edgeprof tensor file, read entry by entry straight into torch tensors."""

    def __init__(self, path):
        _check_little_endian()
        self.path = path
        self._file = open(path, "rb")
        line = self._file.readline()
        self.entries = _entries(line, path)
        self._data_start = len(line)

    def read(self, entry):
        import torch
        tensor = torch.empty([int(d) for d in entry["shape"]], dtype=torch.float32)
        self._file.seek(self._data_start + int(entry["offset"]))
        _readinto_exact(self._file, tensor, self.path)
        return tensor

    def close(self):
        self._file.close()


_NPY_TYPES = {"f2": "float16", "f4": "float32", "f8": "float64"}


class NpzFile(object):
    """A numpy .npz (zip of .npy arrays) read into torch tensors with zipfile; entries "<layer>/<blob index>"."""

    def __init__(self, path):
        _check_little_endian()
        self.path = path
        self._zip = zipfile.ZipFile(path)
        self.entries = []
        for member in self._zip.namelist():
            if not member.endswith(".npy"):
                continue
            layer, _, index = member[:-len(".npy")].rpartition("/")
            if not layer or not index.isdigit():
                raise RunnerError("weights", "%s: array %r is not named <layer>/<blob index>" % (path, member))
            self.entries.append({"name": layer, "blob": int(index), "member": member})

    def read(self, entry):
        import torch
        with self._zip.open(entry["member"]) as stream:
            dtype, shape = self._header(stream, entry["member"])
            tensor = torch.empty(shape, dtype=getattr(torch, dtype))
            _readinto_exact(stream, tensor, "%s:%s" % (self.path, entry["member"]))
        return tensor.float()

    def _header(self, stream, member):
        what = "%s:%s" % (self.path, member)
        magic = stream.read(8)
        if magic[:6] != b"\x93NUMPY":
            raise RunnerError("weights", "%s: not a .npy array" % what)
        length_size = 2 if magic[6] == 1 else 4
        length = int.from_bytes(stream.read(length_size), "little")
        header = ast.literal_eval(stream.read(length).decode("latin-1"))
        descr = header["descr"]
        if header.get("fortran_order") or descr[:1] not in "<=|" or descr[1:] not in _NPY_TYPES:
            raise RunnerError("weights", "%s: only C-ordered little-endian float arrays are read, found %s%s"
                              % (what, descr, " in Fortran order" if header.get("fortran_order") else ""))
        return _NPY_TYPES[descr[1:]], [int(d) for d in header["shape"]]

    def close(self):
        self._zip.close()


def open_tensors(path):
    """A tensor file or .npz, for reading into torch tensors: .entries, .read(entry), .close()."""
    return NpzFile(path) if path.endswith(".npz") else TensorFile(path)
