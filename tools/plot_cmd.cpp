// unet plot: compare runs on one PNG (unet/plot.h). Dispatched from tools/unet.cpp.
//   unet plot -o OUT.png --series "runs/a/loss.csv=SGD 0.99;runs/b/loss.csv=Adam" [--column loss]
//             [--title T] [--ylabel Y] [--smooth 50] [--linear]
#include <cstdio>
#include <string>
#include <vector>

#include "tools/cli.h"
#include "tools/commands.h"
#include "unet/plot.h"

using namespace unet;

int cmd_plot(int argc, char** argv) {
  cli::Args a(argc, argv, 2, cli::kPlot);
  if (a.help_wanted()) {
    std::fputs(cli::help_text(cli::kPlot).c_str(), stdout);
    return 0;
  }
  const std::string out = a.need("out"), spec = a.need("series"), column = a.str("column", "loss");
  std::vector<CurveSeries> series;
  // FILE=LABEL items separated by ';' (a label may hold commas and spaces).
  size_t p = 0;
  while (p <= spec.size()) {
    const size_t e = std::min(spec.find(';', p), spec.size());
    const std::string item = spec.substr(p, e - p);
    p = e + 1;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    const std::string file = item.substr(0, eq), label = eq == std::string::npos ? file : item.substr(eq + 1);
    series.push_back({label, read_csv_column(file, column)});
  }
  UNET_CHECK(!series.empty(), "--series \"", spec, "\" names no file (FILE=LABEL;FILE=LABEL...)");
  CurvesPlot o;
  o.title = a.str("title", column);
  o.ylabel = a.str("ylabel", "");
  o.log_y = !a.flag("linear");
  o.smooth = a.count("smooth", 1, 1, 100000);
  write_curves_plot(out, series, o);
  std::printf("wrote %s (%zu series)\n", out.c_str(), series.size());
  return 0;
}
