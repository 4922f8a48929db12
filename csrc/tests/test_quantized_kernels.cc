// Every fast quantized kernel equals the reference kernel bit for bit, on every ISA level this
// machine runs (AVX2 / AVX-512 / VNNI on x86-64; NEON / dot product on aarch64, also under
// qemu), with weights packed at load (constants) and per call, on randomized shapes and
// quantization parameters including zero point 0, saturation and tile edge sizes.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>
#include <string>

#include "core/op_registry.h"
#include "tests/harness.h"

using namespace ember;

namespace {

struct Case {
  std::string op;
  std::vector<Tensor> inputs;  // undefined Tensor = absent optional input
  AttrMap attrs;
  std::string describe;
};

struct Result {
  Tensor output;
  std::string kernel;
};

// Runs the op like the runtime does: optional constant weights (inputs >= 1) at kernel creation.
Result run_case(const Case& c, bool weights_constant) {
  static const std::string kNoName;
  const OpSchema& schema = OpRegistry::global().get(c.op);
  AttrMap resolved = schema.resolve_attrs(c.attrs);
  std::vector<TensorType> types(c.inputs.size());
  std::vector<const TensorType*> type_ptrs(c.inputs.size(), nullptr);
  std::vector<const Tensor*> ptrs(c.inputs.size(), nullptr);
  std::vector<const Tensor*> constants(c.inputs.size(), nullptr);
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    if (!c.inputs[i].defined()) continue;
    types[i] = c.inputs[i].type();
    type_ptrs[i] = &types[i];
    ptrs[i] = &c.inputs[i];
    if (weights_constant && i >= 1) constants[i] = &c.inputs[i];
  }
  std::vector<TensorType> out_types = schema.infer_types(type_ptrs, resolved);
  Result r;
  r.output = Tensor::empty(out_types[0].shape, out_types[0].dtype);
  std::memset(r.output.raw_data(), 0xAB, r.output.nbytes());
  KernelInit init(&schema, &kNoName, &resolved, types, constants);
  std::unique_ptr<OpKernel> kernel = schema.create_kernel(init);
  r.kernel = kernel->name();
  std::vector<Tensor*> outs = {&r.output};
  static ThreadPool pool(2);
  OpContext ctx(&schema, &kNoName, &resolved, ptrs, outs, &pool);
  kernel->run(ctx);
  return r;
}

template <typename T>
Tensor random_tensor(std::mt19937& rng, const Shape& shape, DType dtype, int64_t lo, int64_t hi) {
  Tensor t = Tensor::empty(shape, dtype);
  std::uniform_int_distribution<int64_t> d(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<T>()[i] = static_cast<T>(d(rng));
  return t;
}

Tensor scales_tensor(std::mt19937& rng, int64_t n, double lo, double hi) {
  Tensor t = Tensor::empty({n}, DType::Float32);
  std::uniform_real_distribution<double> d(std::log(lo), std::log(hi));
  for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = static_cast<float>(std::exp(d(rng)));
  return t;
}

// Compares every ISA's result with the reference; records the kernels used.
void check_all_isas(const Case& c, std::set<std::string>* kernels_used) {
  const Isa saved = max_isa();
  set_max_isa(Isa::Reference);
  Result expected = run_case(c, false);
  for (Isa isa : enabled_isas()) {
    set_max_isa(isa);
    for (bool constant : {false, true}) {
      Result got = run_case(c, constant);
      kernels_used->insert(got.kernel);
      // Byte by byte: uint8 codes, or the float32 of quantized_linear_float bit for bit.
      const auto* a = static_cast<const uint8_t*>(got.output.raw_data());
      const auto* b = static_cast<const uint8_t*>(expected.output.raw_data());
      for (int64_t i = 0; i < static_cast<int64_t>(expected.output.nbytes()); ++i) {
        if (a[i] != b[i]) {
          set_max_isa(saved);
          char msg[512];
          std::snprintf(msg, sizeof msg, "%s: kernel %s (isa %s, constant weights %d) differs at byte %lld: %d vs reference %d",
                        c.describe.c_str(), got.kernel.c_str(), isa_name(isa), constant,
                        static_cast<long long>(i), a[i], b[i]);
          throw std::runtime_error(msg);
        }
      }
    }
  }
  set_max_isa(saved);
}

int64_t pick(std::mt19937& rng, std::initializer_list<int64_t> values) {
  std::uniform_int_distribution<size_t> d(0, values.size() - 1);
  return *(values.begin() + d(rng));
}

int64_t zero_point(std::mt19937& rng) {
  std::uniform_int_distribution<int64_t> d(0, 255);
  return rng() % 4 == 0 ? 0 : d(rng);
}

Case conv_case_of(std::mt19937& rng, int index, int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh,
                  int64_t kw, int64_t stride, int64_t pad, int64_t dil, int64_t groups);

Case conv_case(std::mt19937& rng, int index) {
  std::uniform_int_distribution<int64_t> channels(1, 19), size(1, 13);
  const int64_t kind = index % 4;  // 0: dense, 1: depthwise, 2: grouped, 3: pointwise
  int64_t C = channels(rng), groups = 1, O = pick(rng, {1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 24});
  int64_t kh = pick(rng, {1, 2, 3, 5}), kw = pick(rng, {1, 3, 5});
  int64_t stride = pick(rng, {1, 1, 2, 3}), pad = pick(rng, {0, 1, 2}), dil = pick(rng, {1, 1, 2});
  if (kind == 1) {
    groups = C;
    O = C * pick(rng, {1, 1, 2});
    kh = kw = pick(rng, {3, 3, 5, 1});
  } else if (kind == 2) {
    groups = pick(rng, {2, 3});
    C = groups * pick(rng, {1, 2, 5});
    O = groups * pick(rng, {1, 3, 9});
  } else if (kind == 3) {
    kh = kw = 1;
    stride = 1;
    pad = 0;
    C = pick(rng, {1, 3, 4, 5, 16, 33});
  }
  pad = std::min(pad, std::min(kh, kw) / 2 + 1);
  int64_t H = size(rng) + (kh - 1) * dil, W = size(rng) + (kw - 1) * dil;
  if (index % 7 == 0) W = pick(rng, {31, 32, 33, 47, 48, 49});  // pixel tile edges
  if (kind == 1 && index % 5 == 1) W = pick(rng, {63, 64, 65, 129, 200});  // depthwise vector groups
  return conv_case_of(rng, index, pick(rng, {1, 1, 2}), C, H, W, O, kh, kw, stride, pad, dil, groups);
}

// A quantized_conv2d case of the given geometry with random data and quantization parameters
// (`index` picks the activation, padding asymmetry and sometimes a requantization ratio >= 1).
Case conv_case_of(std::mt19937& rng, int index, int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh,
                  int64_t kw, int64_t stride, int64_t pad, int64_t dil, int64_t groups) {
  const int64_t K = (C / groups) * kh * kw;
  std::uniform_real_distribution<double> log_ratio(std::log(1e-4), std::log(0.5));
  Case c;
  c.op = "quantized_conv2d";
  const bool narrow_weights = rng() % 2;
  c.inputs.push_back(random_tensor<uint8_t>(rng, {N, C, H, W}, DType::UInt8, 0, 255));
  c.inputs.push_back(random_tensor<int8_t>(rng, {O, C / groups, kh, kw}, DType::Int8, narrow_weights ? -127 : -128, 127));
  c.inputs.push_back(scales_tensor(rng, rng() % 3 == 0 ? 1 : O, 1e-3, 5e-2));
  const int64_t bias_kind = rng() % 4;
  if (bias_kind == 0) {
    c.inputs.push_back(Tensor());
  } else {
    int64_t mag = bias_kind == 3 ? (int64_t{1} << 30) : 60000;  // 3: saturating biases
    c.inputs.push_back(random_tensor<int32_t>(rng, {O}, DType::Int32, -mag, mag));
  }
  const double input_scale = std::exp(std::uniform_real_distribution<double>(std::log(0.004), std::log(0.1))(rng));
  // Output scale from a typical requantization ratio; sometimes a ratio >= 1 (fallback path).
  double ratio = std::exp(log_ratio(rng)) / std::sqrt(static_cast<double>(K));
  if (index % 11 == 5) ratio = 3.0;
  const double output_scale = input_scale * 0.01 / ratio;
  c.attrs["stride"] = AttrValue::Ints({stride, stride});
  c.attrs["padding"] = AttrValue::Ints({pad, std::max<int64_t>(pad - (index % 2), 0)});
  c.attrs["dilation"] = AttrValue::Ints({dil, dil});
  c.attrs["groups"] = AttrValue::Int(groups);
  c.attrs["input_scale"] = AttrValue::Float(input_scale);
  c.attrs["input_zero_point"] = AttrValue::Int(zero_point(rng));
  c.attrs["output_scale"] = AttrValue::Float(output_scale);
  c.attrs["output_zero_point"] = AttrValue::Int(zero_point(rng));
  c.attrs["activation"] = AttrValue::String(index % 3 == 0 ? "none" : (index % 3 == 1 ? "relu" : "relu6"));
  char desc[256];
  std::snprintf(desc, sizeof desc, "conv case %d: N=%lld C=%lld H=%lld W=%lld O=%lld k=%lldx%lld s=%lld p=%lld d=%lld g=%lld",
                index, (long long)N, (long long)C, (long long)H, (long long)W, (long long)O, (long long)kh,
                (long long)kw, (long long)stride, (long long)pad, (long long)dil, (long long)groups);
  c.describe = desc;
  return c;
}

Case linear_case(std::mt19937& rng, int index) {
  const int64_t in = pick(rng, {1, 3, 15, 16, 17, 31, 63, 64, 65, 100, 128, 129, 300});
  const int64_t out = pick(rng, {1, 2, 7, 15, 16, 17, 33});
  const int64_t rows = pick(rng, {1, 2, 5});
  Case c;
  c.op = index % 5 == 2 ? "quantized_linear_float" : "quantized_linear";
  Shape xs = index % 4 == 0 ? Shape{2, rows, in} : Shape{rows, in};
  c.inputs.push_back(random_tensor<uint8_t>(rng, xs, DType::UInt8, 0, 255));
  c.inputs.push_back(random_tensor<int8_t>(rng, {out, in}, DType::Int8, -128, 127));
  c.inputs.push_back(scales_tensor(rng, rng() % 3 == 0 ? 1 : out, 1e-3, 5e-2));
  if (rng() % 4 == 0) c.inputs.push_back(Tensor());
  else c.inputs.push_back(random_tensor<int32_t>(rng, {out}, DType::Int32, -60000, 60000));
  const double input_scale = 0.02;
  double ratio = std::exp(std::uniform_real_distribution<double>(std::log(1e-4), std::log(0.5))(rng)) /
                 std::sqrt(static_cast<double>(in));
  if (index % 9 == 4) ratio = 2.5;  // the scalar epilogue handles scales >= 1 too
  c.attrs["input_scale"] = AttrValue::Float(input_scale);
  c.attrs["input_zero_point"] = AttrValue::Int(zero_point(rng));
  if (c.op == "quantized_linear") {
    c.attrs["output_scale"] = AttrValue::Float(input_scale * 0.01 / ratio);
    c.attrs["output_zero_point"] = AttrValue::Int(zero_point(rng));
  }
  c.attrs["activation"] = AttrValue::String(index % 3 == 0 ? "none" : (index % 3 == 1 ? "relu" : "relu6"));
  c.describe = c.op + " case " + std::to_string(index) + ": rows=" + std::to_string(rows) +
               " in=" + std::to_string(in) + " out=" + std::to_string(out);
  return c;
}

// True when some kernel name ends with "_<isa>".
bool any_fast(const std::set<std::string>& used, const char* isa) {
  const std::string suffix = std::string("_") + isa;
  for (const auto& k : used)
    if (k.size() >= suffix.size() && k.compare(k.size() - suffix.size(), suffix.size(), suffix) == 0) return true;
  return false;
}

// The fast kernels this machine should have exercised.
void expect_fast_kernels_ran(const std::set<std::string>& used, bool conv) {
  const CpuFeatures& f = cpu_features();
  if (f.avx2) EXPECT(any_fast(used, "avx2"));
  if (f.avx512_vnni) EXPECT(any_fast(used, "vnni"));
  if (f.avx512f && f.avx512bw && conv) EXPECT(any_fast(used, "avx512"));  // depthwise
  if (f.neon) EXPECT(any_fast(used, "neon"));
  if (f.neon_dot && conv) EXPECT(any_fast(used, "neondot"));
}

}  // namespace

TEST_CASE(quantized_conv2d_fast_kernels_match_reference) {
  std::mt19937 rng(7);
  std::set<std::string> used;
  for (int i = 0; i < 160; ++i) check_all_isas(conv_case(rng, i), &used);
  expect_fast_kernels_ran(used, true);
}

// The in-place 3x3 depthwise kernels (padding 1, stride 1 and 2): widths around their 16-pixel
// vectors and 64-pixel chunks, heights down to 1 (every tap row but one is padding).
TEST_CASE(quantized_depthwise3x3_fast_kernels_match_reference) {
  std::mt19937 rng(12);
  std::set<std::string> used;
  for (int i = 0; i < 60; ++i) {
    const int64_t C = pick(rng, {1, 2, 3, 8, 17}), stride = 1 + i % 2;
    int64_t H = pick(rng, {1, 2, 3, 4, 7, 14, 17});
    int64_t W = pick(rng, {1, 2, 3, 7, 14, 15, 16, 17, 31, 32, 33, 63, 64, 65, 112, 129, 130});
    const int64_t pad = i % 10 == 9 ? 0 : 1;  // padding 0 and one multiplier 2: the other kernels
    const int64_t O = C * (i % 10 == 8 ? 2 : 1);
    if (pad == 0) H = std::max<int64_t>(H, 3), W = std::max<int64_t>(W, 3);
    // Padding (1, 1): conv_case_of makes the width's padding one less for odd indices.
    check_all_isas(conv_case_of(rng, i & ~1, pick(rng, {1, 1, 2}), C, H, W, O, 3, 3, stride, pad, 1, C), &used);
  }
  if (cpu_features().avx512_vnni && cpu_features().avx512_vbmi) EXPECT(used.count("u8s8_dw3x3_vnni") == 1);
  expect_fast_kernels_ran(used, true);
}

TEST_CASE(quantized_linear_fast_kernels_match_reference) {
  std::mt19937 rng(8);
  std::set<std::string> used;
  for (int i = 0; i < 80; ++i) check_all_isas(linear_case(rng, i), &used);
  expect_fast_kernels_ran(used, false);
  if (cpu_features().avx512_vnni) EXPECT(used.count("u8s8_linear_float_dot_vnni") == 1);
  if (cpu_features().neon) EXPECT(used.count("u8s8_linear_float_dot_neon") == 1);
}

TEST_CASE(quantized_add_fast_kernel_matches_reference) {
  std::mt19937 rng(9);
  std::set<std::string> used;
  for (int i = 0; i < 20; ++i) {
    Case c;
    c.op = "quantized_add";
    Shape s = {pick(rng, {1, 3}), pick(rng, {1, 7, 64}), pick(rng, {1, 5, 33})};
    c.inputs.push_back(random_tensor<uint8_t>(rng, s, DType::UInt8, 0, 255));
    c.inputs.push_back(random_tensor<uint8_t>(rng, i % 4 == 0 ? Shape{s.back()} : s, DType::UInt8, 0, 255));
    c.attrs["a_scale"] = AttrValue::Float(0.01 + 0.001 * i);
    c.attrs["b_scale"] = AttrValue::Float(0.03 / (1 + i));
    c.attrs["output_scale"] = AttrValue::Float(0.02);
    c.attrs["a_zero_point"] = AttrValue::Int(zero_point(rng));
    c.attrs["b_zero_point"] = AttrValue::Int(zero_point(rng));
    c.attrs["output_zero_point"] = AttrValue::Int(zero_point(rng));
    c.attrs["activation"] = AttrValue::String(i % 2 ? "relu" : "none");
    c.describe = "add case " + std::to_string(i);
    check_all_isas(c, &used);
  }
  EXPECT(any_fast(used, "portable"));
  if (cpu_features().avx512f) EXPECT(any_fast(used, "avx512"));
}

TEST_CASE(quantize_fast_kernel_matches_reference) {
  std::mt19937 rng(10);
  std::set<std::string> used;
  for (int i = 0; i < 12; ++i) {
    Case c;
    c.op = "quantize";
    const int64_t n = pick(rng, {1, 15, 16, 17, 100, 1000});
    Tensor x = Tensor::empty({n}, DType::Float32);
    std::normal_distribution<float> d(0.0f, 3.0f);
    for (int64_t k = 0; k < n; ++k) x.data<float>()[k] = d(rng);
    const float special[] = {NAN, INFINITY, -INFINITY, 1e30f, -1e30f, -0.0f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f};
    for (int64_t k = 0; k < n && k < 11; ++k) x.data<float>()[k * 7 % n] = special[k];
    c.inputs.push_back(x);
    c.attrs["scale"] = AttrValue::Float(i % 3 == 0 ? 1.0 : 0.01 + 0.03 * i);
    c.attrs["zero_point"] = AttrValue::Int(zero_point(rng));
    c.describe = "quantize case " + std::to_string(i);
    check_all_isas(c, &used);
  }
  if (cpu_features().avx512f) EXPECT(any_fast(used, "avx512"));
}

TEST_CASE(quantized_max_pool2d_fast_kernel_matches_reference) {
  std::mt19937 rng(11);
  std::set<std::string> used;
  for (int i = 0; i < 30; ++i) {
    Case c;
    c.op = "quantized_max_pool2d";
    const int64_t k = pick(rng, {1, 2, 3, 5}), s = pick(rng, {1, 2, 3});
    const int64_t p = std::min<int64_t>(pick(rng, {0, 1, 2}), k / 2);
    const int64_t H = k + pick(rng, {0, 1, 5, 20}), W = k + pick(rng, {0, 3, 60, 130});
    c.inputs.push_back(random_tensor<uint8_t>(rng, {pick(rng, {1, 2}), pick(rng, {1, 3}), H, W}, DType::UInt8,
                                              i % 5 == 0 ? 0 : 0, i % 5 == 0 ? 3 : 255));
    c.attrs["kernel_size"] = AttrValue::Ints({k, k});
    c.attrs["stride"] = AttrValue::Ints({s, s});
    c.attrs["padding"] = AttrValue::Ints({p, p});
    c.attrs["ceil_mode"] = AttrValue::Bool(i % 2 == 1);
    c.describe = "max_pool case " + std::to_string(i);
    check_all_isas(c, &used);
  }
  if (cpu_features().avx512f) EXPECT(any_fast(used, "avx512"));
}
