// safetensors: the checkpoint format of Hugging Face (https://github.com/huggingface/safetensors),
// readable from Python with `safetensors.torch.load_file` / `safetensors.numpy.load_file`.
//
// Layout (all integers little-endian):
//   bytes [0, 8)        u64 N: length of the JSON header
//   bytes [8, 8+N)      UTF-8 JSON object, padded with spaces to a multiple of 8 bytes:
//                         {"<name>": {"dtype": "F32", "shape": [d0, d1, ...],
//                                     "data_offsets": [begin, end]}, ...,
//                          "__metadata__": {"key": "value", ...}}      (string -> string only)
//   bytes [8+N, EOF)    the data buffer; a tensor's bytes are buffer[begin, end), row-major,
//                       little-endian; end - begin == numel * itemsize. Tensors are packed
//                       back to back without holes, and the last one ends at EOF.
//
// This module is generic: it knows names, shapes and floats, nothing of any model.
// Saving always writes F32. Loading accepts F32, F64, F16 and BF16 (converted to float) and the
// integer types I8/U8/I16/U16/I32/U32/I64/U64 and BOOL (converted to float; integers beyond 2^24
// lose precision). Anything malformed throws unet::Error naming the file and the problem.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace unet {

struct NamedTensor {
  std::string name;
  Shape shape;                // may be empty: a scalar (numel 1)
  std::vector<float> data;    // row-major, shape_numel(shape) values
  std::string dtype = "F32";  // on load: the dtype stored in the file (data is float anyway)
};

struct SafetensorsFile {
  std::vector<NamedTensor> tensors;             // in file order (ascending data offset)
  std::map<std::string, std::string> metadata;  // the "__metadata__" map (empty if absent)

  // The tensor called `name`, or nullptr.
  const NamedTensor* find(const std::string& name) const;
  // The tensor called `name`; throws unet::Error (naming it) if absent.
  const NamedTensor& at(const std::string& name) const;
};

// Write tensors (as F32, in the given order) and metadata to `path`, atomically
// (temporary file + fsync + rename; see engine/atomic_file.h). Names must be unique and
// non-empty, must not be "__metadata__", and every data.size() must equal shape_numel(shape).
void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Read and validate a safetensors file. A file that cannot be opened or read throws IoError; a
// damaged one, Error.
SafetensorsFile load_safetensors(const std::string& path);

// The same from `size` bytes in memory (the whole file's content), with the same checks and
// messages; `name` stands for the file in them.
SafetensorsFile parse_safetensors(const uint8_t* data, size_t size, const std::string& name);

}  // namespace unet
