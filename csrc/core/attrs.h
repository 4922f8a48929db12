// Typed operator attributes.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ember {

// Values are stored in the model formats: they only grow.
enum class AttrType : int32_t {
  Int = 1,
  Float = 2,
  String = 3,
  Ints = 4,
  Floats = 5,
  Strings = 6,
  Bool = 7,
};
const char* attr_type_name(AttrType t);

struct AttrValue {
  AttrType type = AttrType::Int;
  int64_t i = 0;  // Int and Bool
  double f = 0.0;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;

  static AttrValue Int(int64_t v);
  static AttrValue Bool(bool v);
  static AttrValue Float(double v);
  static AttrValue String(std::string v);
  static AttrValue Ints(std::vector<int64_t> v);
  static AttrValue Floats(std::vector<double> v);
  static AttrValue Strings(std::vector<std::string> v);

  std::string str() const;  // value as Python would print it
};

using AttrMap = std::map<std::string, AttrValue>;

}  // namespace ember
