// Plots written as PNG images: the training loss curve.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace unet {

// The loss curve as a PNG (iteration on x, loss on a log y axis; validation points in red).
void write_loss_plot(const std::string& path, const std::vector<std::pair<int64_t, float>>& train_loss,
                     const std::vector<std::pair<int64_t, float>>& val_loss);

}  // namespace unet
