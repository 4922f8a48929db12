// ember-run: runs a `.ember` runtime model from the command line, without Python or protobuf.
//
//   ember-run model.ember                               random inputs, prints output summaries
//   ember-run model.ember -i x=x.npy -o out/            inputs from .npy, outputs to out/<name>.npy
//   ember-run model.ember --bench 100 --threads 2       median latency and peak memory
//
// The model is memory-mapped (weights used in place). Inputs not given are random (normal for
// floats, uniform codes for integers) with dynamic dims set to 1. Errors (a corrupt model, a bad
// .npy file, a shape mismatch) print one line and exit with status 1; nothing aborts.
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "ember/predictor.h"

namespace {

using ember::DType;
using ember::Shape;
using ember::Tensor;

[[noreturn]] void usage_error(const std::string& message) {
  throw ember::InvalidArgument(message + " (see ember-run --help)");
}

const char* kUsage =
    "usage: ember-run MODEL.ember [-i NAME=FILE.npy]... [-o DIR] [--threads N] [--bench N]\n"
    "                 [--warmup N] [--seed S]\n"
    "  -i, --input NAME=FILE   input from a .npy file (others are random)\n"
    "  -o, --output-dir DIR    write each output to DIR/<name>.npy\n"
    "  --threads N             intra-op threads (default: hardware threads)\n"
    "  --bench N               run N times; print median/min latency and peak memory\n"
    "  --warmup N              untimed runs before --bench (default 3)\n"
    "  --seed S                seed of the random inputs (default 0)\n";

// ---------------------------------------------------------------- .npy

struct NpyType {
  const char* descr;
  DType dtype;
};
constexpr NpyType kNpyTypes[] = {
    {"<f4", DType::Float32}, {"<f8", DType::Float64}, {"<i8", DType::Int64}, {"<i4", DType::Int32},
    {"|u1", DType::UInt8},   {"|i1", DType::Int8},    {"|b1", DType::Bool},
};

std::string header_field(const std::string& header, const std::string& key, const std::string& path) {
  size_t k = header.find("'" + key + "'");
  if (k == std::string::npos) ember::fail<ember::InvalidArgument>(path, ": .npy header has no '", key, "'");
  size_t colon = header.find(':', k);
  if (colon == std::string::npos) ember::fail<ember::InvalidArgument>(path, ": malformed .npy header");
  return header.substr(colon + 1);
}

Tensor read_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) ember::fail<ember::InvalidArgument>("cannot open input file '", path, "'");
  char magic[8];
  if (!f.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0)
    ember::fail<ember::InvalidArgument>(path, ": not a .npy file");
  uint32_t header_len = 0;
  if (magic[6] == 1) {
    unsigned char b[2];
    if (!f.read(reinterpret_cast<char*>(b), 2)) ember::fail<ember::InvalidArgument>(path, ": truncated .npy header");
    header_len = b[0] | (b[1] << 8);
  } else if (magic[6] == 2 || magic[6] == 3) {
    unsigned char b[4];
    if (!f.read(reinterpret_cast<char*>(b), 4)) ember::fail<ember::InvalidArgument>(path, ": truncated .npy header");
    header_len = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
  } else {
    ember::fail<ember::InvalidArgument>(path, ": unsupported .npy version ", int(magic[6]));
  }
  if (header_len > (1u << 20)) ember::fail<ember::InvalidArgument>(path, ": .npy header too large");
  std::string header(header_len, '\0');
  if (!f.read(header.data(), header_len)) ember::fail<ember::InvalidArgument>(path, ": truncated .npy header");
  std::string descr = header_field(header, "descr", path);
  DType dtype = DType::Undefined;
  for (const auto& t : kNpyTypes)
    if (descr.find(std::string("'") + t.descr + "'") != std::string::npos) dtype = t.dtype;
  if (dtype == DType::Undefined)
    ember::fail<ember::InvalidArgument>(path, ": unsupported .npy dtype ", descr.substr(0, descr.find(',')),
                                        " (expected little-endian float32/64, int64/32, uint8, int8, bool)");
  std::string fortran = header_field(header, "fortran_order", path);
  fortran.erase(0, fortran.find_first_not_of(' '));
  if (fortran.rfind("True", 0) == 0)
    ember::fail<ember::InvalidArgument>(path, ": Fortran-ordered arrays are not supported");
  std::string shape_text = header_field(header, "shape", path);
  size_t open = shape_text.find('('), close = shape_text.find(')');
  if (open == std::string::npos || close == std::string::npos) ember::fail<ember::InvalidArgument>(path, ": malformed shape");
  Shape shape;
  std::stringstream ss(shape_text.substr(open + 1, close - open - 1));
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.find_first_not_of(" ") == std::string::npos) continue;
    long long d = std::stoll(item);
    if (d < 0) ember::fail<ember::InvalidArgument>(path, ": negative dimension");
    shape.push_back(d);
  }
  Tensor t = Tensor::empty(shape, dtype);
  if (!f.read(static_cast<char*>(t.raw_data()), static_cast<std::streamsize>(t.nbytes())))
    ember::fail<ember::InvalidArgument>(path, ": truncated data (expected ", t.nbytes(), " bytes)");
  return t;
}

void write_npy(const std::string& path, const Tensor& t) {
  const char* descr = nullptr;
  for (const auto& n : kNpyTypes)
    if (n.dtype == t.dtype()) descr = n.descr;
  std::string shape = "(";
  for (size_t i = 0; i < t.shape().size(); ++i) shape += (i ? ", " : "") + std::to_string(t.shape()[i]);
  shape += t.shape().size() == 1 ? ",)" : ")";
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  if (!f) ember::fail<ember::InvalidArgument>("cannot write output file '", path, "'");
  const unsigned char len[2] = {static_cast<unsigned char>(header.size() & 0xff), static_cast<unsigned char>(header.size() >> 8)};
  f.write("\x93NUMPY\x01\x00", 8);
  f.write(reinterpret_cast<const char*>(len), 2);
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  f.write(static_cast<const char*>(t.raw_data()), static_cast<std::streamsize>(t.nbytes()));
}

// ---------------------------------------------------------------- inputs

Tensor random_input(const ember::TensorInfo& info, std::mt19937& rng) {
  Shape shape = info.type.shape;
  for (auto& d : shape) d = d < 0 ? 1 : d;
  Tensor t = Tensor::empty(shape, info.type.dtype);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_int_distribution<int> codes(0, 255);
  const int64_t n = t.numel();
  switch (t.dtype()) {
    case DType::Float32: for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = static_cast<float>(normal(rng)); break;
    case DType::Float64: for (int64_t i = 0; i < n; ++i) t.data<double>()[i] = normal(rng); break;
    case DType::Int64: for (int64_t i = 0; i < n; ++i) t.data<int64_t>()[i] = codes(rng) % 10; break;
    case DType::Int32: for (int64_t i = 0; i < n; ++i) t.data<int32_t>()[i] = codes(rng) % 10; break;
    case DType::UInt8: for (int64_t i = 0; i < n; ++i) t.data<uint8_t>()[i] = static_cast<uint8_t>(codes(rng)); break;
    case DType::Int8: for (int64_t i = 0; i < n; ++i) t.data<int8_t>()[i] = static_cast<int8_t>(codes(rng) - 128); break;
    case DType::Bool: for (int64_t i = 0; i < n; ++i) t.data<bool>()[i] = codes(rng) & 1; break;
    default: ember::fail<ember::Unsupported>("input '", info.name, "' has an unsupported dtype");
  }
  return t;
}

std::string summary(const Tensor& t) {
  std::ostringstream os;
  os << ember::dtype_name(t.dtype()) << ember::shape_str(t.shape());
  if (t.dtype() == DType::Float32 && t.numel() > 0) {
    const float* p = t.data<float>();
    double sum = 0, lo = p[0], hi = p[0];
    int64_t argmax = 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
      sum += p[i];
      lo = std::min<double>(lo, p[i]);
      if (p[i] > hi) hi = p[i], argmax = i;
    }
    os << " mean " << sum / t.numel() << " min " << lo << " max " << hi << " argmax " << argmax;
  }
  return os.str();
}

// Peak resident memory of this process image. /proc's VmHWM belongs to the address space made
// by exec; getrusage's maximum can include the parent's image at fork time.
double peak_rss_mb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // kilobytes on Linux
}

int parse_int(const std::string& flag, const std::string& value, int min) {
  char* end = nullptr;
  long v = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || v < min) usage_error(flag + " expects an integer >= " + std::to_string(min) + ", got '" + value + "'");
  return static_cast<int>(v);
}

int run(int argc, char** argv) {
  std::string model_path, output_dir;
  std::map<std::string, std::string> input_files;
  int threads = 0, bench = 0, warmup = 3, seed = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "-i" || a == "--input") {
      std::string v = value();
      size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0) usage_error("--input expects NAME=FILE.npy, got '" + v + "'");
      input_files[v.substr(0, eq)] = v.substr(eq + 1);
    } else if (a == "-o" || a == "--output-dir") {
      output_dir = value();
    } else if (a == "--threads") {
      threads = parse_int(a, value(), 1);
    } else if (a == "--bench") {
      bench = parse_int(a, value(), 1);
    } else if (a == "--warmup") {
      warmup = parse_int(a, value(), 0);
    } else if (a == "--seed") {
      seed = parse_int(a, value(), 0);
    } else if (!a.empty() && a[0] == '-') {
      usage_error("unknown option '" + a + "'");
    } else if (model_path.empty()) {
      model_path = a;
    } else {
      usage_error("unexpected argument '" + a + "'");
    }
  }
  if (model_path.empty()) usage_error("no model given");

  const auto load_start = std::chrono::steady_clock::now();
  auto predictor = ember::Predictor::load_file(model_path, threads);
  const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - load_start).count();

  std::mt19937 rng(static_cast<unsigned>(seed));
  std::vector<Tensor> inputs;
  for (const auto& info : predictor->inputs()) {
    auto it = input_files.find(info.name);
    if (it != input_files.end()) {
      inputs.push_back(read_npy(it->second));
      input_files.erase(it);
    } else {
      inputs.push_back(random_input(info, rng));
    }
  }
  if (!input_files.empty()) usage_error("the model has no input named '" + input_files.begin()->first + "'");

  std::vector<Tensor> outputs = predictor->run(inputs);
  const auto& infos = predictor->outputs();
  for (size_t i = 0; i < outputs.size(); ++i) {
    std::printf("%s: %s\n", infos[i].name.c_str(), summary(outputs[i]).c_str());
    if (!output_dir.empty()) {
      mkdir(output_dir.c_str(), 0755);
      std::string safe = infos[i].name;
      std::replace(safe.begin(), safe.end(), '/', '_');
      write_npy(output_dir + "/" + safe + ".npy", outputs[i]);
    }
  }
  if (bench > 0) {
    for (int i = 0; i < warmup; ++i) predictor->run(inputs);
    std::vector<double> ms;
    for (int i = 0; i < bench; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      predictor->run(inputs);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    const double median = ms.size() % 2 ? ms[ms.size() / 2] : (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]) / 2;
    const ember::MemoryStats stats = predictor->memory_stats();
    std::printf("load %.3f ms; %d runs, %d threads: median %.3f ms, min %.3f ms; peak memory %.1f MB "
                "(arena %.2f MB, weights %.2f MB)\n",
                load_ms, bench, predictor->num_threads(), median, ms.front(), peak_rss_mb(),
                stats.arena_bytes / 1048576.0, stats.weight_bytes / 1048576.0);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const ember::Error& e) {
    std::fprintf(stderr, "ember-run: %s\n", e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ember-run: error: %s\n", e.what());
  }
  return 1;
}
