// Exporting a trained model for shipping: the weights only (no optimizer state), optionally
// stored as IEEE half precision (F16), which halves the file; loading converts F16 back to float
// (engine/safetensors.h), so an exported file is used like any checkpoint (--model, --init).
#pragma once
#include <cstdint>
#include <map>
#include <string>

namespace unet {

// Round to nearest, ties to even; overflow gives +-inf, tiny values become subnormal or +-0.
uint16_t float_to_half(float f);
float half_from_bits(uint16_t h);

struct ExportReport {
  int64_t parameters = 0;
  size_t bytes = 0;            // size of the written file
  double max_abs_error = 0.0;  // largest |stored - original| over the weights (0 for F32)
  double max_rel_error = 0.0;  // the same relative to the largest |weight| of its tensor
};

// Writes the parameters of checkpoint `in` to `out` (atomically) as F16 (`fp16`) or F32, with
// in's metadata (architecture, training state, train.* options) minus the optimizer's, plus
// `notes` as extra metadata entries. Throws, naming the file, when `in` is not a checkpoint or a
// weight does not fit F16 (|w| > 65504).
ExportReport export_model(const std::string& in, const std::string& out, bool fp16,
                          const std::map<std::string, std::string>& notes = {});

}  // namespace unet
