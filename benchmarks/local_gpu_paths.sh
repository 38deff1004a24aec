#!/usr/bin/env bash
# The GPU code paths of edgeprof on the `local` device of a machine with an NVIDIA GPU and torch with CUDA,
# which CI and the lab (CPU only) cannot reach: the README's first command, the PyTorch variants, per-layer
# times with CUDA synchronisation, windows with NVML telemetry, concurrent jobs pinned to GPUs, a second
# process holding the GPU (gpu_shared), cold start and memory columns, the libtorch runner built against
# the wheel's CUDA libtorch, ONNX Runtime, and the two timer benchmarks. Clocks are left as they are
# (--clocks leave): a shared machine's clocks, power limit and persistence mode are not ours to change.
#
#     benchmarks/local_gpu_paths.sh OUT_DIR [part1|part2|part3]
#
# Every result goes to OUT_DIR/results.sqlite (read it with `edgeprof results list --db ...`), everything
# printed to OUT_DIR/part*.log. Each step has its own time limit, so one that hangs costs only its limit.
set -u
out=${1:?usage: local_gpu_paths.sh OUT_DIR [part1|part2|part3]}
part=${2:-part1}
mkdir -p "$out"
db=$out/results.sqlite
log=$out/$part.log
export COLUMNS=150 PYTHONUNBUFFERED=1

# The edgeprof command (EDGEPROF=path when it is not on PATH); timeout needs a program, not a function.
ep=${EDGEPROF:-edgeprof}

step() {
    local limit=$1
    shift
    printf '\n$ %s  (limit %s s)\n' "$*" "$limit" | tee -a "$log"
    local started=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee -a "$log"
    printf '[exit %s after %s s]\n' "${PIPESTATUS[0]}" "$((SECONDS - started))" | tee -a "$log"
}

# A process of our own holding GPU memory while an item runs: what `gpu_shared` exists to see.
hold_gpu() {
    python3 -c 'import time, torch; x = torch.empty(2 << 30, dtype=torch.uint8, device="cuda"); time.sleep(float(__import__("sys").argv[1]))' "$1"
}

case $part in
part1)
    step 30 nvidia-smi
    step 30 python3 -c 'import torch, sys; print(sys.version.split()[0], torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))'
    step 30 sh -c 'command -v g++ c++ cmake nvcc; g++ --version | head -1; cmake --version | head -1'
    step 240 "$ep" measure --device local --clocks leave --db "$db" --backend pytorch alexnet googlenet vgg16 resnet50
    step 90 "$ep" measure --device local --clocks leave --db "$db" --backend pytorch resnet50 --precision fp16 --channels-last --cuda-graph
    step 90 "$ep" measure --device local --clocks leave --db "$db" --backend pytorch resnet50 --per-layer
    step 60 "$ep" measure --device local --clocks leave --db "$db" --backend pytorch resnet50 --duration 15 --window 3
    step 60 "$ep" measure --device local --clocks leave --db "$db" --backend pytorch alexnet --jobs 2 --gpus all
    hold_gpu 40 &
    sleep 8
    step 30 nvidia-smi --query-compute-apps=pid,process_name,used_gpu_memory --format=csv
    step 60 "$ep" measure --device local --clocks leave --db "$db" --backend pytorch alexnet
    wait
    step 240 "$ep" measure --device local --clocks leave --db "$db" --backend libtorch resnet50
    ;;
part2)
    step 150 "$ep" measure --device local --clocks leave --db "$db" --backend onnxruntime alexnet resnet50
    step 150 "$ep" compare --device local --db "$db" alexnet resnet50 --backend pytorch --batch 1,8,64 --metric latency,memory
    step 150 python3 benchmarks/pytorch_cuda_event_loop.py --batch 1,64 --no-best
    ;;
part3)
    # Real inputs end to end (decode on the CPU, the rest on the GPU) and torchvision's detectors on CUDA.
    frames=$out/frames
    step 60 python3 -c 'import sys, os, random; from PIL import Image; os.makedirs(sys.argv[1], exist_ok=True); r = random.Random(0); [Image.frombytes("RGB", (640, 480), bytes(r.getrandbits(8) for _ in range(640 * 480 * 3))).save(os.path.join(sys.argv[1], "%02d.jpg" % i), quality=90) for i in range(8)]' "$frames"
    step 120 "$ep" measure --device local --clocks leave --db "$db" --backend pytorch alexnet --input "$frames" --images 200
    step 120 "$ep" measure --device local --clocks leave --db "$db" --backend pytorch alexnet --input "$frames" --images 200 --prefetch 4
    step 180 "$ep" measure --device local --clocks leave --db "$db" --backend pytorch torchvision:ssdlite320_mobilenet_v3_large torchvision:fasterrcnn_resnet50_fpn
    rm -rf "$frames"
    ;;
*)
    echo "unknown part: $part (part1, part2 or part3)" >&2
    exit 2
    ;;
esac
step 60 "$ep" results list --db "$db"
