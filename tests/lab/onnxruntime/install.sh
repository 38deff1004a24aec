#!/bin/sh
# Install a real ONNX Runtime release into the lab's root filesystem, for boards whose inventory entry names its
# Python: 1.10.0, the release the Jetson Zoo lists for JetPack 4.6 (TX2, Nano; Python 3.6 there), here as the
# x86 build for the rootfs's Python 3.9. Its limits are the release's (opset 15, IR version 8: edgeprof's table,
# checked against the same release in tests/models/test_onnx_versions.py). It stays out of the board's plain
# python3, so sim-tx2 itself keeps having no onnxruntime.
#
#   install.sh ROOTFS
#
# Installs into ROOTFS/opt/edgeprof-lab/onnxruntime-1.10.0 (site/ and bin/python3, which runs the board's
# python3 with site/ on its path; numpy and protobuf are Debian's, already in the rootfs). Called by
# tests/lab/lab up; idempotent. Needs root and PyPI.
set -eu

if [ "$#" -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: $0 ROOTFS" >&2
    exit 2
fi
VERSION=1.10.0
PREFIX=/opt/edgeprof-lab/onnxruntime-$VERSION
DEST=$1$PREFIX
PIP=${PIP:-pip3}
PYVER=$(chroot "$1" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')

if [ ! -f "$DEST/site/onnxruntime/__init__.py" ]; then
    # The wheel for the rootfs's Python, not the host's: pip is told the target's version and platform.
    "$PIP" install -q --disable-pip-version-check --no-deps --only-binary=:all: --implementation cp \
        --python-version "$PYVER" --platform manylinux2014_x86_64 --target "$DEST/site" "onnxruntime==$VERSION"
fi
install -d -m 0755 "$DEST/bin"
cat > "$DEST/bin/python3" <<WRAPPER
#!/bin/sh
PYTHONPATH=$PREFIX/site\${PYTHONPATH:+:\$PYTHONPATH} exec /usr/bin/python3 "\$@"
WRAPPER
chmod 0755 "$DEST/bin/python3"
chroot "$1" "$PREFIX/bin/python3" -c "import onnxruntime; assert onnxruntime.__version__ == '$VERSION'"
