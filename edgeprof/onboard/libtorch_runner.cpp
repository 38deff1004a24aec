// edgeprof's LibTorch runner: a TorchScript module run from C++, without Python in the loop, so that the
// Python runner's time for the same module (torch_runner.py) can be set beside it (seed 004, "LibTorch vs
// Python"). Built ON the board against the libtorch inside its torch wheel (CMakeLists.txt beside this file;
// libtorch_runner.py builds it and drives it). Runs as
//
//     libtorch_runner --model FILE.pt --device cpu|cuda --batch N --input-shape 3,224,224 --seed S
//                     --span compute|host [--threads T]
//
// and answers one JSON line per command read on stdin, so that the warm-up, the adaptive stop and the
// statistics stay timing.py's (one rule, in Python; libtorch_runner.py's step sends "step" and reads the time):
//     (at start)  {"load_s", "libtorch_version", "device_name", "threads", "grad_mode"} once the module is
//                 loaded
//     step        the milliseconds of one inference, timed here (steady_clock, CLOCK_MONOTONIC on Linux as
//                 Python's perf_counter); on CUDA with torch::cuda::synchronize() before the clock starts
//                 and before it stops. Span compute: the input already on the device; span host: the input
//                 copied from pinned host memory, the forward and every output tensor copied back. On the
//                 CPU both are the forward alone, as in torch_runner.py.
//     memory      {"rss_bytes", "rss_peak_bytes" (this process, proc(5) VmRSS/VmHWM), "allocator_bytes",
//                 "allocator_peak_bytes", "allocator_reserved_bytes" (CUDA's caching allocator; null on CPU)}
//     ping        0, for the pipe's round trip
// An error is {"error": message, "kind": "usage"|"runtime"} and exit status 1.
//
// The input is standard normal from --seed + 1 on torch's CPU generator, as torch_models.random_inputs()
// draws it. Inference mode (c10::InferenceMode, torch 1.9+; NoGradGuard before) as torch_runner.py's
// torch.inference_mode(). cuDNN autotuning on and TF32 off, torch_runner.py's defaults.
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <torch/version.h>
#ifdef EDGEPROF_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

#if TORCH_VERSION_MAJOR > 1 || TORCH_VERSION_MINOR >= 9
using GradOff = c10::InferenceMode;
const char* const kGradMode = "inference_mode";
#else
using GradOff = torch::NoGradGuard;
const char* const kGradMode = "no_grad";
#endif

struct Args {
  std::string model, device = "cpu", span = "compute";
  std::vector<int64_t> shape = {3, 224, 224};
  int64_t batch = 1, seed = 0, threads = 0;
};

struct Failure {
  std::string kind, message;
};

std::string quoted(const std::string& text) {
  std::ostringstream out;
  out << '"';
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out << '\\' << c;
    } else if (c < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out << escaped;
    } else {
      out << c;
    }
  }
  out << '"';
  return out.str();
}

std::string number_or_null(int64_t value) { return value < 0 ? "null" : std::to_string(value); }

std::vector<int64_t> dims(const std::string& text) {
  std::vector<int64_t> found;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    found.push_back(std::stoll(item));
    if (found.back() < 1) throw Failure{"usage", "--input-shape " + text + ": dimensions must be at least 1"};
  }
  return found;
}

Args parse(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; i += 2) {
    const std::string name = argv[i];
    if (i + 1 >= argc) throw Failure{"usage", name + " needs a value"};
    const std::string value = argv[i + 1];
    try {
      if (name == "--model") args.model = value;
      else if (name == "--device") args.device = value;
      else if (name == "--span") args.span = value;
      else if (name == "--input-shape") args.shape = dims(value);
      else if (name == "--batch") args.batch = std::stoll(value);
      else if (name == "--seed") args.seed = std::stoll(value);
      else if (name == "--threads") args.threads = std::stoll(value);
      else throw Failure{"usage", "unknown option " + name};
    } catch (const std::logic_error&) {  // std::stoll's invalid_argument and out_of_range
      throw Failure{"usage", name + " " + value + ": not a number"};
    }
  }
  if (args.model.empty()) throw Failure{"usage", "--model is required"};
  if (args.batch < 1) throw Failure{"usage", "--batch must be at least 1"};
  if (args.span != "compute" && args.span != "host") throw Failure{"usage", "--span is compute or host"};
  return args;
}

// A proc(5) "kB" line of /proc/self/status in bytes, -1 where there is none.
int64_t status_bytes(const std::string& key) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.compare(0, key.size() + 1, key + ":") == 0) return std::stoll(line.substr(key.size() + 1)) * 1024;
  }
  return -1;
}

void tensors_of(const c10::IValue& value, std::vector<at::Tensor>& found) {
  if (value.isTensor()) {
    found.push_back(value.toTensor());
  } else if (value.isTuple()) {
    for (const auto& item : value.toTuple()->elements()) tensors_of(item, found);
  } else if (value.isList()) {
    for (const c10::IValue item : value.toList()) tensors_of(item, found);
  } else if (value.isGenericDict()) {
    for (const auto& item : value.toGenericDict()) tensors_of(item.value(), found);
  }
}

class Runner {
 public:
  explicit Runner(const Args& args)
      : args_(args), device_(args.device == "cuda" ? torch::kCUDA : torch::kCPU), on_cuda_(args.device == "cuda") {
    if (args.device != "cpu" && args.device != "cuda") throw Failure{"usage", "--device is cpu or cuda"};
    if (on_cuda_ && !torch::cuda::is_available()) {
      throw Failure{"usage", "--device cuda: libtorch " + std::string(version()) + " sees no CUDA device"};
    }
    if (args.threads > 0) at::set_num_threads(static_cast<int>(args.threads));
#ifdef EDGEPROF_WITH_CUDA
    at::globalContext().setBenchmarkCuDNN(true);
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
#endif
    const auto start = Clock::now();
    module_ = torch::jit::load(args.model, device_);
    module_.eval();
    synchronize();
    load_s_ = seconds(start, Clock::now());
    std::vector<int64_t> shape = {args.batch};
    shape.insert(shape.end(), args.shape.begin(), args.shape.end());
    torch::manual_seed(static_cast<uint64_t>(args.seed + 1));
    host_input_ = torch::randn(shape);
    if (on_cuda_ && args.span == "host") host_input_ = host_input_.pin_memory();
    inputs_ = {host_input_.to(device_)};
    synchronize();
  }

  std::string ready() const {
    std::string name = "null";
#ifdef EDGEPROF_WITH_CUDA
    if (on_cuda_) name = quoted(at::cuda::getCurrentDeviceProperties()->name);
#endif
    return "{\"load_s\": " + std::to_string(load_s_) + ", \"libtorch_version\": " + quoted(version()) +
           ", \"device_name\": " + name + ", \"threads\": " + std::to_string(at::get_num_threads()) +
           ", \"grad_mode\": " + quoted(kGradMode) + "}";
  }

  double step() {
    synchronize();
    const auto start = Clock::now();
    if (on_cuda_ && args_.span == "host") {
      std::vector<c10::IValue> copied = {host_input_.to(device_, /*non_blocking=*/true)};
      std::vector<at::Tensor> outputs;
      tensors_of(module_.forward(copied), outputs);
      for (const auto& output : outputs) output.to(torch::kCPU);
    } else {
      module_.forward(inputs_);
    }
    synchronize();
    return seconds(start, Clock::now()) * 1e3;
  }

  std::string memory() const {
    int64_t in_use = -1, peak = -1, reserved = -1;
#ifdef EDGEPROF_WITH_CUDA
    if (on_cuda_) {
      // Index 0 is StatType::AGGREGATE in every torch release; the enum's namespace moved (c10::cuda to
      // c10::CachingAllocator), the index did not. These are what torch.cuda.memory_allocated,
      // max_memory_allocated and max_memory_reserved read.
      const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(c10::cuda::current_device());
      in_use = stats.allocated_bytes[0].current;
      peak = stats.allocated_bytes[0].peak;
      reserved = stats.reserved_bytes[0].peak;
    }
#endif
    return "{\"rss_bytes\": " + number_or_null(status_bytes("VmRSS")) + ", \"rss_peak_bytes\": " +
           number_or_null(status_bytes("VmHWM")) + ", \"allocator_bytes\": " + number_or_null(in_use) +
           ", \"allocator_peak_bytes\": " + number_or_null(peak) + ", \"allocator_reserved_bytes\": " +
           number_or_null(reserved) + "}";
  }

 private:
  using Clock = std::chrono::steady_clock;

  static double seconds(Clock::time_point start, Clock::time_point end) {
    return std::chrono::duration<double>(end - start).count();
  }

  static const char* version() {
    static const std::string text = std::to_string(TORCH_VERSION_MAJOR) + "." +
                                    std::to_string(TORCH_VERSION_MINOR) + "." + std::to_string(TORCH_VERSION_PATCH);
    return text.c_str();
  }

  void synchronize() const {
    if (on_cuda_) torch::cuda::synchronize();
  }

  Args args_;
  torch::Device device_;
  bool on_cuda_;
  torch::jit::Module module_;
  at::Tensor host_input_;
  std::vector<c10::IValue> inputs_;
  double load_s_ = 0;
};

int fail(const Failure& failure) {
  std::cout << "{\"error\": " << quoted(failure.message) << ", \"kind\": " << quoted(failure.kind) << "}"
            << std::endl;
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args args = parse(argc, argv);
    GradOff guard;
    Runner runner(args);
    std::cout << runner.ready() << std::endl;
    for (std::string command; std::getline(std::cin, command);) {
      std::ostringstream reply;
      if (command == "step") {
        reply.precision(17);
        reply << runner.step();
      } else if (command == "memory") {
        reply << runner.memory();
      } else if (command == "ping") {
        reply << 0;
      } else {
        return fail({"usage", "unknown command " + command});
      }
      std::cout << reply.str() << std::endl;
    }
    return 0;
  } catch (const Failure& failure) {
    return fail(failure);
  } catch (const c10::Error& error) {
    return fail({"runtime", error.what_without_backtrace()});
  } catch (const std::exception& error) {
    return fail({"runtime", error.what()});
  }
}
