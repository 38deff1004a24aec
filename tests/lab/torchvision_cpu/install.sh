#!/bin/sh
# Install torchvision from PyPI into a virtual environment whose torch is the CPU build (tests/setup's .venv,
# the lab's sim-desktop), and make it load there.
#
#   install.sh VENV
#
# VERSION below is the torchvision release built against torch 2.13.0, the torch tests/setup and tests/lab/lab pin
# (torchvision's wheel requires torch==2.13.0); another torch is refused.
#
# PyPI's torchvision wheels for Linux x86_64 are built for PyPI's CUDA torch: torchvision/_C.so (the C++
# operators: nms, roi_align...) needs libc10_cuda.so, libtorch_cuda.so and libcudart.so.13, which a CPU torch
# does not ship, so `import torchvision` fails with "operator torchvision::nms does not exist". The CPU build
# lives only on download.pytorch.org, which the lab and CI cannot reach. So, where torch is a CPU build and
# torchvision does not import, this compiles stand-ins for those three libraries into
# VENV/lib/torchvision-cuda-stand-ins and points _C.so's RPATH there (patchelf): one function per symbol _C.so
# takes from them, each of which aborts naming itself if ever called, except CUDA's fat-binary registration
# that runs when the library loads (a no-op here). Without a GPU the CUDA kernels are never dispatched to; the
# CPU kernels that run are the wheel's own. Idempotent; needs gcc, nm (binutils), patchelf and PyPI.
set -eu

VERSION=0.28.0
TORCH_RELEASE=2.13.0
if [ "$#" -ne 1 ] || [ ! -x "$1/bin/python" ]; then
    echo "usage: $0 VENV" >&2
    exit 2
fi
VENV=$(cd "$1" && pwd)   # absolute: it goes into _C.so's RPATH
PY=$VENV/bin/python
# What must work: the import, and one operator of _C.so (detectors' box NMS).
CHECK='import torch, torchvision; b = torch.tensor([[0., 0, 1, 1], [0, 0, 1, 1]]); assert torchvision.ops.nms(b, torch.tensor([1., .5]), .5).tolist() == [0]'

# With the torch already there named as it is (torchvision pins torch exactly), so pip never swaps that torch.
TORCH=$("$PY" -c 'import torch; print(torch.__version__)')
case $TORCH in
    "$TORCH_RELEASE"|"$TORCH_RELEASE"+*) ;;
    *) echo "$0: torchvision $VERSION needs torch $TORCH_RELEASE; $VENV has torch $TORCH" >&2; exit 1 ;;
esac
"$VENV/bin/pip" install -q --disable-pip-version-check "torchvision==$VERSION" "torch==$TORCH"
(cd / && "$PY" -c "$CHECK" 2>/dev/null) && exit 0
if [ "$("$PY" -c 'import torch; print(torch.version.cuda)')" != None ]; then
    echo "$0: torchvision $VERSION does not import beside a CUDA torch: not a case for the stand-ins" >&2
    "$PY" -c "$CHECK"
    exit 1
fi

# Found without importing torchvision, which fails here.
LIB=$("$PY" -c 'import importlib.util, os; print(os.path.join(importlib.util.find_spec("torchvision").submodule_search_locations[0], "_C.so"))')
STANDINS=$VENV/lib/torchvision-cuda-stand-ins
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$STANDINS"
# $1: the undefined symbols of _C.so a stand-in defines (nm -D prints "U name[@version]").
stand_in() {
    {
        cat <<'C'
#include <stdio.h>
#include <stdlib.h>
static void refuse(const char *name) {
    fprintf(stderr, "torchvision CUDA stand-in: %s called, but there is no CUDA here\n", name);
    abort();
}
C
        nm -D --undefined-only "$LIB" | awk '$1 == "U" {print $2}' | sed 's/@.*//' | grep -E "$1" | while read -r name; do
            case $name in
                # c10::cuda::CUDACachingAllocator::allocator: a std::atomic<CUDAAllocator*>, a data symbol.
                *CUDACachingAllocator9allocatorE) echo "void *$name = 0;" ;;
                # Called by the static constructors that register the CUDA kernels, as the library loads.
                __cuda*) echo "void *$name(void) { return 0; }" ;;
                *) echo "void $name(void) { refuse(\"$name\"); }" ;;
            esac
        done
    }
}
CUDA_SYMBOLS='^_ZN?K?[0-9]+(c10|at)4cuda'
stand_in "$CUDA_SYMBOLS" > "$WORK/c10_cuda.c"
nm -D --undefined-only "$LIB" | grep -q '@libcudart.so.13' || { echo "$0: $LIB takes nothing from libcudart.so.13" >&2; exit 1; }
CUDART_SYMBOLS=$(nm -D --undefined-only "$LIB" | awk '$1 == "U" && /@libcudart.so.13/ {print $2}' | sed 's/@.*//' | paste -sd '|')
stand_in "^($CUDART_SYMBOLS)\$" > "$WORK/cudart.c"
# _C.so asks for its cudart symbols at version libcudart.so.13, as the real library defines them.
echo 'libcudart.so.13 { global: *; };' > "$WORK/cudart.map"
gcc -shared -fPIC -o "$STANDINS/libc10_cuda.so" -Wl,-soname,libc10_cuda.so "$WORK/c10_cuda.c"
gcc -shared -fPIC -o "$STANDINS/libtorch_cuda.so" -Wl,-soname,libtorch_cuda.so -x c /dev/null
gcc -shared -fPIC -o "$STANDINS/libcudart.so.13" -Wl,-soname,libcudart.so.13 -Wl,--version-script="$WORK/cudart.map" \
    "$WORK/cudart.c"
patchelf --set-rpath "$STANDINS" "$LIB"
(cd / && "$PY" -c "$CHECK")
