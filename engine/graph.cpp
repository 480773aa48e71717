// The capture state the ops consult (engine/graph.h); the graphs themselves are in engine/graph_cuda.cu.
#include "engine/graph.h"

namespace unet {

namespace {
thread_local Capture* g_capture = nullptr;
}  // namespace

Capture* current_capture() { return g_capture; }
void set_current_capture(Capture* c) { g_capture = c; }

}  // namespace unet
