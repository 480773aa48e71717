// Plots written as PNG images: the training loss curve, and run comparisons (docs/training.md's
// curves): several series of (x, y) points read from the CSV files training writes (loss.csv,
// val.csv), each drawn as its running mean in its own colour with a legend.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace unet {

// The loss curve as a PNG (iteration on x, loss on a log y axis; validation points in red).
void write_loss_plot(const std::string& path, const std::vector<std::pair<int64_t, float>>& train_loss,
                     const std::vector<std::pair<int64_t, float>>& val_loss);

struct CurveSeries {
  std::string label;
  std::vector<std::pair<double, double>> points;  // (x, y), x ascending
};

struct CurvesPlot {
  std::string title, xlabel = "iteration", ylabel;
  bool log_y = true;  // log-scaled y axis (values <= 0 are left out)
  int smooth = 1;     // running-mean window in points (1 = the raw values)
  int width = 720, height = 420;
};

// Throws when there is nothing to draw or a series is empty (naming it).
void write_curves_plot(const std::string& path, const std::vector<CurveSeries>& series, const CurvesPlot& opt);

// The column called `column` of a CSV file with a header line, against its first column; throws
// naming the file and the columns it has when `column` is not one of them.
std::vector<std::pair<double, double>> read_csv_column(const std::string& path, const std::string& column);

}  // namespace unet
