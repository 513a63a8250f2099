// Note [Reading .pth without torch::pickle_load]
// torch.save writes a zip archive (LibTorch reads it with caffe2::serialize::PyTorchStreamReader)
// holding data.pkl, a pickle whose tensors point to storage records data/<key>. LibTorch's own
// unpickler (torch::pickle_load, torch::jit::Unpickler) turns collections.OrderedDict into None and
// then fails with "Expected GenericDict but got None" on every `model.state_dict()` checkpoint
// (pytorch/pytorch#100741, still so in 2.11). So data.pkl is read here by a small allowlist
// unpickler in the spirit of torch.load(weights_only=True): it builds only dicts, lists, tuples,
// scalars, strings and tensors (torch._utils._rebuild_tensor_v2 / _rebuild_parameter), never
// calls anything, and keeps any other Python object as an opaque value, so a checkpoint
// such as {"model": ..., "args": argparse.Namespace(...)} still yields its "model".
#include "pickle_state_dict.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <deque>
#include <set>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vision::io {

namespace {

// In preference order: BasicSR stores both "params" and "params_ema" and evaluates the latter.
constexpr std::array<std::string_view, 4> kWrapperKeys = {"model", "state_dict", "params_ema", "params"};
// Real checkpoints nest one or two levels; the bound only stops a hostile file from looping us.
constexpr int kMaxNesting = 4;

struct Value;
using ValuePtr = Value*;

// A pickled Python value. Containers are shared, as in Python: the memo and the stack may refer
// to one dict that SETITEMS later fills, and a hostile pickle may put a container inside itself,
// so values are owned by the unpickler's arena, not by each other.
struct Value {
  enum class Kind { None, Bool, Int, Float, String, Tuple, List, Dict, Tensor, Global, Object, Mark };
  Kind kind = Kind::None;
  std::int64_t integer = 0;  // Bool, Int
  double real = 0;
  std::string text;             // String; "module.name" of a Global or an Object
  std::vector<ValuePtr> items;  // Tuple, List; Dict as key, value, key, value, ...
  // Tensor: a view of a storage (Storage: the whole record, 1-D)
  std::string storage, storage_type;
  std::int64_t offset = 0, elements = 0;  // elements: of the storage record
  std::vector<std::int64_t> sizes, strides;
};

std::string kind_name(const Value& v) {
  switch (v.kind) {
    case Value::Kind::None: return "None";
    case Value::Kind::Bool: return "bool";
    case Value::Kind::Int: return "int";
    case Value::Kind::Float: return "float";
    case Value::Kind::String: return "str";
    case Value::Kind::Tuple: return "tuple";
    case Value::Kind::List: return "list";
    case Value::Kind::Dict: return "dict";
    case Value::Kind::Tensor: return "tensor";
    case Value::Kind::Global: return "class " + v.text;
    case Value::Kind::Object: return "object " + v.text;
    case Value::Kind::Mark: return "mark";
  }
  return "?";
}

class Unpickler {
 public:
  Unpickler(const std::string& path, std::string_view pickle, const StorageElements& storage_elements)
      : path_(path), data_(pickle), storage_elements_(storage_elements) {}

  ValuePtr run() {
    for (;;) {
      const unsigned char op = u8();
      switch (op) {
        case 0x80: u8(); break;     // PROTO
        case 0x95: take(8); break;  // FRAME
        case '.': return pop();     // STOP
        case '(': stack_.push_back(make(Value::Kind::Mark)); break;
        case '}': stack_.push_back(make(Value::Kind::Dict)); break;
        case ']': stack_.push_back(make(Value::Kind::List)); break;
        case ')': stack_.push_back(make(Value::Kind::Tuple)); break;
        case 0x8f: stack_.push_back(make(Value::Kind::List)); break;  // EMPTY_SET
        case 't': push_container(Value::Kind::Tuple, pop_mark()); break;
        case 'l': push_container(Value::Kind::List, pop_mark()); break;
        case 0x91: push_container(Value::Kind::List, pop_mark()); break;  // FROZENSET
        case 'd': push_container(Value::Kind::Dict, pop_mark()); break;
        case 0x85: tuple_of(1); break;
        case 0x86: tuple_of(2); break;
        case 0x87: tuple_of(3); break;
        case 'q': memo_[u8()] = top(); break;            // BINPUT
        case 'r': memo_[le(4)] = top(); break;           // LONG_BINPUT
        case 0x94: memo_[memo_.size()] = top(); break;   // MEMOIZE
        case 'h': stack_.push_back(memo(u8())); break;   // BINGET
        case 'j': stack_.push_back(memo(le(4))); break;  // LONG_BINGET
        case 'c': {  // GLOBAL; two statements, as argument evaluation order is unspecified
          const std::string module = line();
          global(module, line());
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          const ValuePtr name = pop(), module = pop();
          check(name->kind == Value::Kind::String && module->kind == Value::Kind::String,
                "STACK_GLOBAL of non-strings");
          global(module->text, name->text);
          break;
        }
        case 'X': string(le(4)); break;                              // BINUNICODE
        case 0x8c: string(u8()); break;                              // SHORT_BINUNICODE
        case 0x8d: string(le(8)); break;                             // BINUNICODE8
        case 'B': string(le(4)); break;                              // BINBYTES
        case 'C': string(u8()); break;                               // SHORT_BINBYTES
        case 0x8e: string(le(8)); break;                             // BINBYTES8
        case 'J': integer(static_cast<std::int32_t>(le(4))); break;  // BININT
        case 'K': integer(u8()); break;                              // BININT1
        case 'M': integer(static_cast<std::int64_t>(le(2))); break;  // BININT2
        case 0x8a: long1(); break;                                   // LONG1
        case 'G': binfloat(); break;
        case 'N': stack_.push_back(make(Value::Kind::None)); break;
        case 0x88: boolean(true); break;
        case 0x89: boolean(false); break;
        case 'R': reduce(); break;
        case 'b':  // BUILD: object state (an OrderedDict's _metadata) is not needed
          pop();
          check(!stack_.empty(), "BUILD without an object at byte ", pos_);
          break;
        case 0x81: newobj(2); break;  // NEWOBJ
        case 0x92: newobj(3); break;  // NEWOBJ_EX
        case 'Q': persistent(pop()); break;
        case 's': set_items(2); break;
        case 'u': set_items(0); break;
        case 'a': append(false); break;
        case 'e': append(true); break;
        case 0x90: append(true); break;  // ADDITEMS
        case '0': pop(); break;
        case '1': pop_mark(); break;
        case '2': stack_.push_back(top()); break;
        default:
          fail("unsupported pickle opcode ", static_cast<int>(op), " at byte ", pos_ - 1,
               " (torch.save writes protocol 2)");
      }
    }
  }

 private:
  ValuePtr make(Value::Kind kind) {
    arena_.emplace_back();
    arena_.back().kind = kind;
    return &arena_.back();
  }

  template <typename... Parts>
  [[noreturn]] void fail(Parts&&... parts) const {
    SPARSESCOPE_FAIL("checkpoint '", path_, "': data.pkl: ", std::forward<Parts>(parts)...);
  }
  template <typename... Parts>
  void check(bool cond, Parts&&... parts) const {
    if (!cond) fail(std::forward<Parts>(parts)...);
  }

  const char* take(std::size_t n) {
    check(n <= data_.size() - pos_, "truncated at byte ", pos_);
    const char* p = data_.data() + pos_;
    pos_ += n;
    return p;
  }
  unsigned char u8() { return static_cast<unsigned char>(*take(1)); }
  std::uint64_t le(std::size_t n) {
    const char* p = take(n);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
    return v;
  }
  std::string line() {
    const char* begin = data_.data() + pos_;
    const auto* nl = static_cast<const char*>(std::memchr(begin, '\n', data_.size() - pos_));
    check(nl != nullptr, "unterminated GLOBAL at byte ", pos_);
    pos_ += static_cast<std::size_t>(nl - begin) + 1;
    return std::string(begin, nl);
  }

  ValuePtr pop() {
    check(!stack_.empty() && stack_.back()->kind != Value::Kind::Mark, "stack underflow at byte ", pos_);
    ValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  const ValuePtr& top() const {
    check(!stack_.empty(), "stack underflow at byte ", pos_);
    return stack_.back();
  }
  std::vector<ValuePtr> pop_mark() {
    auto it =
        std::find_if(stack_.rbegin(), stack_.rend(), [](const ValuePtr& v) { return v->kind == Value::Kind::Mark; });
    check(it != stack_.rend(), "no MARK on the stack at byte ", pos_);
    const auto mark = it.base() - 1;
    std::vector<ValuePtr> items(mark + 1, stack_.end());
    stack_.erase(mark, stack_.end());
    return items;
  }
  ValuePtr memo(std::uint64_t id) const {
    const auto it = memo_.find(id);
    check(it != memo_.end(), "memo entry ", id, " read before it was written");
    return it->second;
  }

  void push_container(Value::Kind kind, std::vector<ValuePtr> items) {
    auto v = make(kind);
    check(kind != Value::Kind::Dict || items.size() % 2 == 0, "DICT with an odd number of items");
    v->items = std::move(items);
    stack_.push_back(std::move(v));
  }
  void tuple_of(std::size_t n) {
    check(stack_.size() >= n, "stack underflow at byte ", pos_);
    std::vector<ValuePtr> items(n);
    for (std::size_t i = n; i-- > 0;) items[i] = pop();
    push_container(Value::Kind::Tuple, std::move(items));
  }
  void string(std::uint64_t n) {
    check(n <= data_.size() - pos_, "string of ", n, " bytes runs past the end");
    auto v = make(Value::Kind::String);
    v->text.assign(take(n), n);
    stack_.push_back(std::move(v));
  }
  void integer(std::int64_t value) {
    auto v = make(Value::Kind::Int);
    v->integer = value;
    stack_.push_back(std::move(v));
  }
  void boolean(bool value) {
    auto v = make(Value::Kind::Bool);
    v->integer = value;
    stack_.push_back(std::move(v));
  }
  void long1() {
    const std::size_t n = u8();
    check(n <= 8, "integer of ", n, " bytes does not fit 64 bits");
    std::uint64_t raw = n ? le(n) : 0;
    if (n > 0 && n < 8 && (raw >> (8 * n - 1)) & 1) raw |= ~std::uint64_t{0} << (8 * n);  // sign-extend
    integer(static_cast<std::int64_t>(raw));
  }
  void binfloat() {
    const char* p = take(8);
    std::uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits = (bits << 8) | static_cast<unsigned char>(p[i]);  // big-endian
    auto v = make(Value::Kind::Float);
    std::memcpy(&v->real, &bits, sizeof bits);
    stack_.push_back(std::move(v));
  }
  void global(const std::string& module, const std::string& name) {
    auto v = make(Value::Kind::Global);
    v->text = module + "." + name;
    stack_.push_back(std::move(v));
  }
  void newobj(int operands) {
    for (int i = 1; i < operands; ++i) pop();
    const ValuePtr cls = pop();
    auto v = make(Value::Kind::Object);
    v->text = cls->kind == Value::Kind::Global ? cls->text : kind_name(*cls);
    stack_.push_back(std::move(v));
  }
  void set_items(std::size_t count) {
    std::vector<ValuePtr> items;
    if (count == 0) {
      items = pop_mark();
    } else {
      const ValuePtr value = pop(), key = pop();
      items = {key, value};
    }
    const ValuePtr& dict = top();
    check(items.size() % 2 == 0, "SETITEMS with an odd number of items");
    if (dict->kind != Value::Kind::Dict) return;  // the state of an opaque object
    dict->items.insert(dict->items.end(), items.begin(), items.end());
  }
  void append(bool many) {
    std::vector<ValuePtr> items = many ? pop_mark() : std::vector<ValuePtr>{pop()};
    const ValuePtr& list = top();
    if (list->kind != Value::Kind::List) return;
    list->items.insert(list->items.end(), items.begin(), items.end());
  }

  void reduce() {
    const ValuePtr args = pop();
    const ValuePtr callable = pop();
    check(args->kind == Value::Kind::Tuple, "REDUCE arguments are a ", kind_name(*args), ", not a tuple");
    stack_.push_back(call(*callable, args->items));
  }

  ValuePtr call(const Value& callable, const std::vector<ValuePtr>& args, int depth = 0) {
    const std::string& name = callable.text;
    check(depth < 8, "tensor rebuild calls nest too deeply");
    if (callable.kind == Value::Kind::Global) {
      if (name == "collections.OrderedDict" && args.empty()) return make(Value::Kind::Dict);
      if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
        return rebuild_tensor(args);
      }
      if ((name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") &&
          !args.empty() && args[0]->kind == Value::Kind::Tensor) {
        return args[0];
      }
      // LibTorch's own pickler (torch::pickle_save) tags containers with their static type and
      // wraps typed lists; torch.load unwraps both the same way.
      if ((name == "torch.jit._pickle.restore_type_tag" || name.rfind("torch.jit._pickle.build_", 0) == 0) &&
          !args.empty()) {
        return args[0];
      }
      // (func, type, args, state): a tensor subclass; the plain tensor is what a state dict needs.
      if (name == "torch._tensor._rebuild_from_type_v2" && args.size() >= 3 && args[2]->kind == Value::Kind::Tuple) {
        return call(*args[0], args[2]->items, depth + 1);
      }
    }
    auto object = make(Value::Kind::Object);
    object->text = callable.kind == Value::Kind::Global ? name : kind_name(callable);
    return object;
  }

  std::vector<std::int64_t> ints(const ValuePtr& v, const char* what) const {
    check(v->kind == Value::Kind::Tuple, "tensor ", what, " is a ", kind_name(*v), ", not a tuple");
    std::vector<std::int64_t> out;
    for (const auto& item : v->items) {
      check(item->kind == Value::Kind::Int, "tensor ", what, " holds a ", kind_name(*item));
      out.push_back(item->integer);
    }
    return out;
  }

  ValuePtr rebuild_tensor(const std::vector<ValuePtr>& args) {
    check(args.size() >= 4 && args[0]->kind == Value::Kind::Tensor && args[1]->kind == Value::Kind::Int,
          "malformed _rebuild_tensor arguments");
    const Value& storage = *args[0];
    const std::int64_t offset = args[1]->integer;
    const auto sizes = ints(args[2], "size");
    const auto strides = ints(args[3], "stride");
    std::int64_t last = offset;
    bool empty = false, ok = offset >= 0 && sizes.size() == strides.size();
    for (std::size_t d = 0; ok && d < sizes.size(); ++d) {
      ok = sizes[d] >= 0 && strides[d] >= 0;
      empty = empty || sizes[d] == 0;
      std::int64_t step = 0;
      if (ok && sizes[d] > 0)
        ok = !__builtin_mul_overflow(sizes[d] - 1, strides[d], &step) && !__builtin_add_overflow(last, step, &last);
    }
    const auto join = [](const std::vector<std::int64_t>& v) {
      std::string out;
      for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
      return "[" + out + "]";
    };
    check(ok && (empty || last < storage.elements), "tensor view (offset ", offset, ", size ", join(sizes),
          ", stride ", join(strides), ") reaches beyond its storage of ", storage.elements, " elements");
    auto v = make(Value::Kind::Tensor);
    v->storage = storage.storage;
    v->storage_type = storage.storage_type;
    v->elements = storage.elements;
    v->offset = offset;
    v->sizes = sizes;
    v->strides = strides;
    return v;
  }

  // ('storage', torch.<Type>Storage, key, location, numel): the record data/<key>, counted once so
  // that views keep sharing it.
  void persistent(const ValuePtr& pid) {
    check(pid->kind == Value::Kind::Tuple && pid->items.size() >= 5 && pid->items[0]->kind == Value::Kind::String &&
              pid->items[0]->text == "storage" && pid->items[1]->kind == Value::Kind::Global &&
              pid->items[2]->kind == Value::Kind::String,
          "unsupported persistent id (not a torch.save storage)");
    const std::string& key = pid->items[2]->text;
    auto v = make(Value::Kind::Tensor);
    v->storage = key;
    v->storage_type = pid->items[1]->text;
    const auto it = storages_.find(key);
    if (it != storages_.end()) {
      check(it->second.first == v->storage_type, "storage '", key, "' is read as ", v->storage_type, " and as ",
            it->second.first);
      v->elements = it->second.second;
    } else {
      v->elements = storage_elements_(key, v->storage_type);
      storages_.emplace(key, std::make_pair(v->storage_type, v->elements));
    }
    v->sizes = {v->elements};
    v->strides = {1};
    stack_.push_back(std::move(v));
  }

  const std::string& path_;
  std::string_view data_;
  const StorageElements& storage_elements_;
  std::size_t pos_ = 0;
  std::deque<Value> arena_;  // every value made; a deque keeps their addresses
  std::vector<ValuePtr> stack_;
  std::unordered_map<std::uint64_t, ValuePtr> memo_;
  std::map<std::string, std::pair<std::string, std::int64_t>> storages_;  // key -> (type, elements)
};

std::string quoted_key(const Value& key) {
  if (key.kind == Value::Kind::String) return "['" + key.text + "']";
  if (key.kind == Value::Kind::Int) return "[" + std::to_string(key.integer) + "]";
  return "[" + kind_name(key) + "]";
}

bool all_tensors(const Value& dict) {
  for (std::size_t i = 0; i < dict.items.size(); i += 2) {
    if (dict.items[i]->kind != Value::Kind::String || dict.items[i + 1]->kind != Value::Kind::Tensor) return false;
  }
  return true;
}

}  // namespace

std::vector<PickledTensor> read_state_dict_pickle(const char* data, std::size_t size, const std::string& path,
                                                  const StorageElements& storage_elements) {
  Unpickler unpickler(path, std::string_view(data, size), storage_elements);
  ValuePtr root = unpickler.run();

  std::string where;  // the nesting entered so far, as Python indexing
  for (int depth = 0;; ++depth) {
    SPARSESCOPE_CHECK(root->kind == Value::Kind::Dict, "checkpoint '", path, "'", where, ": holds ", kind_name(*root),
                      ", not a dict of tensors");
    if (all_tensors(*root) || depth == kMaxNesting) break;
    ValuePtr inner = nullptr;
    for (const std::string_view key : kWrapperKeys) {
      for (std::size_t i = 0; i < root->items.size() && !inner; i += 2) {
        const Value& k = *root->items[i];
        if (k.kind == Value::Kind::String && k.text == key && root->items[i + 1]->kind == Value::Kind::Dict) {
          inner = root->items[i + 1];
        }
      }
      if (inner) {
        where += "['" + std::string(key) + "']";
        break;
      }
    }
    if (!inner) break;
    root = inner;
  }

  std::vector<PickledTensor> out;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < root->items.size(); i += 2) {
    const Value& key = *root->items[i];
    const Value& value = *root->items[i + 1];
    SPARSESCOPE_CHECK(key.kind == Value::Kind::String, "checkpoint '", path, "': key ", where, quoted_key(key), " is ",
                      kind_name(key), ", not a string");
    SPARSESCOPE_CHECK(value.kind == Value::Kind::Tensor, "checkpoint '", path, "': entry ", where, quoted_key(key),
                      " holds ", kind_name(value), ", not a tensor (not a state dict?)");
    SPARSESCOPE_CHECK(seen.insert(key.text).second, "checkpoint '", path, "': duplicate key ", where, quoted_key(key));
    out.push_back({key.text, value.storage, value.storage_type, value.offset, value.sizes, value.strides});
  }
  return out;
}

}  // namespace sparsescope::vision::io
