#include "core/attrs.h"

#include <sstream>

namespace ember {

const char* attr_type_name(AttrType t) {
  switch (t) {
    case AttrType::Int: return "int";
    case AttrType::Float: return "float";
    case AttrType::String: return "string";
    case AttrType::Ints: return "int[]";
    case AttrType::Floats: return "float[]";
    case AttrType::Strings: return "string[]";
    case AttrType::Bool: return "bool";
  }
  return "unknown";
}

AttrValue AttrValue::Int(int64_t v) { AttrValue a; a.type = AttrType::Int; a.i = v; return a; }
AttrValue AttrValue::Bool(bool v) { AttrValue a; a.type = AttrType::Bool; a.i = v; return a; }
AttrValue AttrValue::Float(double v) { AttrValue a; a.type = AttrType::Float; a.f = v; return a; }
AttrValue AttrValue::String(std::string v) {
  AttrValue a; a.type = AttrType::String; a.s = std::move(v); return a;
}
AttrValue AttrValue::Ints(std::vector<int64_t> v) {
  AttrValue a; a.type = AttrType::Ints; a.ints = std::move(v); return a;
}
AttrValue AttrValue::Floats(std::vector<double> v) {
  AttrValue a; a.type = AttrType::Floats; a.floats = std::move(v); return a;
}
AttrValue AttrValue::Strings(std::vector<std::string> v) {
  AttrValue a; a.type = AttrType::Strings; a.strings = std::move(v); return a;
}

std::string AttrValue::str() const {
  std::ostringstream os;
  switch (type) {
    case AttrType::Int: os << i; break;
    case AttrType::Bool: os << (i ? "True" : "False"); break;
    case AttrType::Float: os << f; break;
    case AttrType::String: os << "'" << s << "'"; break;
    case AttrType::Ints:
      os << "[";
      for (size_t k = 0; k < ints.size(); ++k) os << (k ? ", " : "") << ints[k];
      os << "]";
      break;
    case AttrType::Floats:
      os << "[";
      for (size_t k = 0; k < floats.size(); ++k) os << (k ? ", " : "") << floats[k];
      os << "]";
      break;
    case AttrType::Strings:
      os << "[";
      for (size_t k = 0; k < strings.size(); ++k) os << (k ? ", " : "") << "'" << strings[k] << "'";
      os << "]";
      break;
  }
  return os.str();
}

}  // namespace ember
