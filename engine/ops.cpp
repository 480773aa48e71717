#include "engine/ops.h"

#include "engine/backend.h"
#include "engine/graph.h"

namespace unet::ops {

namespace {
thread_local kernels::Precision g_conv_precision = kernels::Precision::FP32;
}  // namespace

kernels::Precision conv_precision() { return g_conv_precision; }
ConvPrecision::ConvPrecision(kernels::Precision p) : prev_(g_conv_precision) { g_conv_precision = p; }
ConvPrecision::~ConvPrecision() { g_conv_precision = prev_; }

namespace {

const kernels::KernelTable& table(Device d) { return kernels_for(d); }
kernels::Stream stream(Device d) { return stream_for(d); }
// A shape dimension as the int the kernels take.
int narrow(int64_t v) { return static_cast<int>(v); }

// Output Var: needs a gradient when recording is on and any input needs one.
Var make_output(Tensor value, std::initializer_list<const Var*> inputs) {
  bool rg = false;
  if (grad_enabled())
    for (const Var* v : inputs) rg = rg || v->requires_grad();
  return Var(std::move(value), rg);
}

void check_4d(const char* op, const char* what, const Var& v) {
  UNET_CHECK(v.defined() && v.value().ndim() == 4 && v.value().dtype() == DType::F32, op, ": ", what,
             " must be a 4-D f32 NCHW tensor, got ", v.defined() ? shape_str(v.shape()) : std::string("undefined"));
  // An empty dimension has nothing to compute, and the kernels' sums (a bias gradient over no channels) would
  // be left unwritten.
  UNET_CHECK(v.value().numel() > 0, op, ": ", what, " ", shape_str(v.shape()), " has an empty dimension");
}

void check_same_device(const char* op, std::initializer_list<const Var*> vs) {
  Device d = (*vs.begin())->device();
  for (const Var* v : vs)
    UNET_CHECK(v->device() == d, op, ": inputs on different devices (", device_name(d), " and ",
               device_name(v->device()), ")");
}

// The common shape of conv3x3 / conv1x1: w[K,C,k,k], b[K].
void check_conv(const char* op, const Var& x, const Var& w, const Var& b, int k) {
  check_4d(op, "input", x);
  check_4d(op, "weight", w);
  check_same_device(op, {&x, &w, &b});
  const Shape& ws = w.shape();
  UNET_CHECK(ws[1] == x.shape()[1] && ws[2] == k && ws[3] == k, op, ": weight ", shape_str(ws), " does not fit input ",
             shape_str(x.shape()), " (want [K,", x.shape()[1], ",", k, ",", k, "])");
  UNET_CHECK(b.value().numel() == ws[0], op, ": bias has ", b.value().numel(), " elements for ", ws[0],
             " output channels");
}

}  // namespace

Var conv3x3(const Var& x, const Var& w, const Var& b) {
  check_conv("conv3x3", x, w, b, 3);
  const Shape& s = x.shape();
  int N = narrow(s[0]), C = narrow(s[1]), H = narrow(s[2]), W = narrow(s[3]), Ko = narrow(w.shape()[0]);
  UNET_CHECK(H >= 3 && W >= 3, "conv3x3: input ", shape_str(s), " is smaller than the 3x3 kernel");
  Device d = x.device();
  const kernels::Precision prec = conv_precision();
  OpRange r("conv3x3");
  Tensor y = Tensor::empty({N, Ko, H - 2, W - 2}, DType::F32, d);
  table(d).conv3x3_forward(stream(d), prec, x.value().f32(), w.value().f32(), b.value().f32(), y.f32(), N, C, H, W, Ko);
  Var out = make_output(y, {&x, &w, &b});
  if (out.requires_grad()) {
    Tape::current().record("conv3x3", [x, w, b, out, N, C, H, W, Ko, d, prec] {
      if (!out.grad().defined()) return;
      const float* dy = out.grad().f32();
      if (x.requires_grad()) {
        Tensor dx = Tensor::empty(x.shape(), DType::F32, d);
        table(d).conv3x3_backward_data(stream(d), prec, dy, w.value().f32(), dx.f32(), N, C, H, W, Ko);
        x.accumulate_grad(dx);
      }
      if (w.requires_grad() || b.requires_grad()) {
        Tensor dw = Tensor::empty(w.shape(), DType::F32, d), db = Tensor::empty(b.shape(), DType::F32, d);
        table(d).conv3x3_backward_weight(stream(d), prec, x.value().f32(), dy, dw.f32(), db.f32(), N, C, H, W, Ko);
        if (w.requires_grad()) w.accumulate_grad(dw);
        if (b.requires_grad()) b.accumulate_grad(db);
      }
    });
  }
  return out;
}

// y = max(0, conv3x3(x)) from one kernel; backward: the convolution's gradients of dy * (y > 0).
Var conv3x3_relu(const Var& x, const Var& w, const Var& b) {
  check_conv("conv3x3_relu", x, w, b, 3);
  const Shape& s = x.shape();
  int N = narrow(s[0]), C = narrow(s[1]), H = narrow(s[2]), W = narrow(s[3]), Ko = narrow(w.shape()[0]);
  UNET_CHECK(H >= 3 && W >= 3, "conv3x3_relu: input ", shape_str(s), " is smaller than the 3x3 kernel");
  Device d = x.device();
  const kernels::Precision prec = conv_precision();
  OpRange r("conv3x3_relu");
  Tensor y = Tensor::empty({N, Ko, H - 2, W - 2}, DType::F32, d);
  table(d).conv3x3_relu_forward(stream(d), prec, x.value().f32(), w.value().f32(), b.value().f32(), y.f32(), N, C, H, W,
                                Ko);
  Var out = make_output(y, {&x, &w, &b});
  if (out.requires_grad()) {
    Tape::current().record("conv3x3_relu", [x, w, b, out, N, C, H, W, Ko, d, prec] {
      if (!out.grad().defined()) return;
      // One call for both passes: the kernels read dy * (y > 0) from dy and y (a backend that must mask dy
      // first does it once for both).
      const float *dy = out.grad().f32(), *y = out.value().f32();
      Tensor dx, dw, db;
      if (x.requires_grad()) dx = Tensor::empty(x.shape(), DType::F32, d);
      if (w.requires_grad() || b.requires_grad())
        dw = Tensor::empty(w.shape(), DType::F32, d), db = Tensor::empty(b.shape(), DType::F32, d);
      if (!dx.defined() && !dw.defined()) return;
      table(d).conv3x3_relu_backward(stream(d), prec, x.value().f32(), dy, y, w.value().f32(),
                                     dx.defined() ? dx.f32() : nullptr, dw.defined() ? dw.f32() : nullptr,
                                     db.defined() ? db.f32() : nullptr, N, C, H, W, Ko);
      if (dx.defined()) x.accumulate_grad(dx);
      if (w.requires_grad()) w.accumulate_grad(dw);
      if (b.requires_grad()) b.accumulate_grad(db);
    });
  }
  return out;
}

Var conv3x3_relu_concat(const Var& skip, const Var& up, const Var& w, const Var& b) {
  const char* op = "conv3x3_relu_concat";
  check_4d(op, "skip", skip);
  check_4d(op, "up", up);
  check_4d(op, "weight", w);
  check_same_device(op, {&skip, &up, &w, &b});
  const Shape &ss = skip.shape(), &us = up.shape(), &ws = w.shape();
  int N = narrow(ss[0]), Cs = narrow(ss[1]), Hs = narrow(ss[2]), Ws = narrow(ss[3]);
  int Cu = narrow(us[1]), H = narrow(us[2]), W = narrow(us[3]), Ko = narrow(ws[0]);
  UNET_CHECK(us[0] == N && Hs >= H && Ws >= W && Cs > 0 && Cu > 0, op, ": skip ", shape_str(ss),
             " cannot be cropped to up ", shape_str(us));
  UNET_CHECK(ws[1] == Cs + Cu && ws[2] == 3 && ws[3] == 3, op, ": weight ", shape_str(ws), " does not fit skip ",
             shape_str(ss), " and up ", shape_str(us), " (want [K,", Cs + Cu, ",3,3])");
  UNET_CHECK(b.value().numel() == ws[0], op, ": bias has ", b.value().numel(), " elements for ", ws[0],
             " output channels");
  UNET_CHECK(H >= 3 && W >= 3, op, ": input ", shape_str(us), " is smaller than the 3x3 kernel");
  Device d = up.device();
  const kernels::Precision prec = conv_precision();
  OpRange r(op);
  Tensor y = Tensor::empty({N, Ko, H - 2, W - 2}, DType::F32, d);
  table(d).conv3x3_relu_concat_forward(stream(d), prec, skip.value().f32(), up.value().f32(), w.value().f32(),
                                       b.value().f32(), y.f32(), N, Cs, Hs, Ws, Cu, H, W, Ko);
  Var out = make_output(y, {&skip, &up, &w, &b});
  if (out.requires_grad()) {
    Tape::current().record(op, [skip, up, w, b, out, N, Cs, Hs, Ws, Cu, H, W, Ko, d, prec] {
      if (!out.grad().defined()) return;
      const float *dy = out.grad().f32(), *y = out.value().f32();
      Tensor ds, du, dw, db;
      if (skip.requires_grad() || up.requires_grad())
        ds = Tensor::empty(skip.shape(), DType::F32, d), du = Tensor::empty(up.shape(), DType::F32, d);
      if (w.requires_grad() || b.requires_grad())
        dw = Tensor::empty(w.shape(), DType::F32, d), db = Tensor::empty(b.shape(), DType::F32, d);
      if (!ds.defined() && !dw.defined()) return;
      table(d).conv3x3_relu_concat_backward(stream(d), prec, skip.value().f32(), up.value().f32(), dy, y,
                                            w.value().f32(), ds.defined() ? ds.f32() : nullptr,
                                            du.defined() ? du.f32() : nullptr, dw.defined() ? dw.f32() : nullptr,
                                            db.defined() ? db.f32() : nullptr, N, Cs, Hs, Ws, Cu, H, W, Ko);
      if (skip.requires_grad()) skip.accumulate_grad(ds);
      if (up.requires_grad()) up.accumulate_grad(du);
      if (w.requires_grad()) w.accumulate_grad(dw);
      if (b.requires_grad()) b.accumulate_grad(db);
    });
  }
  return out;
}

Var conv1x1(const Var& x, const Var& w, const Var& b) {
  check_conv("conv1x1", x, w, b, 1);
  const Shape& s = x.shape();
  int N = narrow(s[0]), C = narrow(s[1]), H = narrow(s[2]), W = narrow(s[3]), Ko = narrow(w.shape()[0]);
  Device d = x.device();
  const kernels::Precision prec = conv_precision();
  OpRange r("conv1x1");
  Tensor y = Tensor::empty({N, Ko, H, W}, DType::F32, d);
  table(d).conv1x1_forward(stream(d), prec, x.value().f32(), w.value().f32(), b.value().f32(), y.f32(), N, C, H, W, Ko);
  Var out = make_output(y, {&x, &w, &b});
  if (out.requires_grad()) {
    Tape::current().record("conv1x1", [x, w, b, out, N, C, H, W, Ko, d, prec] {
      if (!out.grad().defined()) return;
      const float* dy = out.grad().f32();
      if (x.requires_grad()) {
        Tensor dx = Tensor::empty(x.shape(), DType::F32, d);
        table(d).conv1x1_backward_data(stream(d), prec, dy, w.value().f32(), dx.f32(), N, C, H, W, Ko);
        x.accumulate_grad(dx);
      }
      if (w.requires_grad() || b.requires_grad()) {
        Tensor dw = Tensor::empty(w.shape(), DType::F32, d), db = Tensor::empty(b.shape(), DType::F32, d);
        table(d).conv1x1_backward_weight(stream(d), prec, x.value().f32(), dy, dw.f32(), db.f32(), N, C, H, W, Ko);
        if (w.requires_grad()) w.accumulate_grad(dw);
        if (b.requires_grad()) b.accumulate_grad(db);
      }
    });
  }
  return out;
}

Var relu(const Var& x) {
  UNET_CHECK(x.defined() && x.value().dtype() == DType::F32, "relu: input must be f32");
  Device d = x.device();
  OpRange r("relu");
  Tensor y = Tensor::empty(x.shape(), DType::F32, d);
  table(d).relu_forward(stream(d), x.value().f32(), y.f32(), y.numel());
  Var out = make_output(y, {&x});
  if (out.requires_grad()) {
    // Backward needs only the output (y > 0 <=> x > 0).
    Tape::current().record("relu", [x, out, d] {
      if (!out.grad().defined()) return;
      Tensor dx = Tensor::empty(x.shape(), DType::F32, d);
      table(d).relu_backward(stream(d), out.value().f32(), out.grad().f32(), dx.f32(), dx.numel());
      x.accumulate_grad(dx);
    });
  }
  return out;
}

Var maxpool2x2(const Var& x) {
  check_4d("maxpool2x2", "input", x);
  const Shape& s = x.shape();
  int N = narrow(s[0]), C = narrow(s[1]), H = narrow(s[2]), W = narrow(s[3]);
  UNET_CHECK(H % 2 == 0 && W % 2 == 0, "maxpool2x2: input ", shape_str(s),
             " has an odd height or width; every 2x2 max-pool needs an even size (choose a valid tile "
             "size: see the U-Net size helper)");
  Device d = x.device();
  OpRange r("maxpool2x2");
  Tensor y = Tensor::empty({N, C, H / 2, W / 2}, DType::F32, d);
  table(d).maxpool2x2_forward(stream(d), x.value().f32(), y.f32(), N, C, H, W);
  Var out = make_output(y, {&x});
  if (out.requires_grad()) {
    Tape::current().record("maxpool2x2", [x, out, N, C, H, W, d] {
      if (!out.grad().defined()) return;
      // Into x's gradient itself: a U-Net skip tensor already holds the decoder's gradient, and the kernel adds
      // to it rather than writing a new tensor for a separate add.
      bool accumulate = false;
      Tensor dx = x.grad_sink(&accumulate);
      table(d).maxpool2x2_backward(stream(d), x.value().f32(), out.grad().f32(), dx.f32(), N, C, H, W, accumulate);
    });
  }
  return out;
}

Var upconv2x2(const Var& x, const Var& w, const Var& b) {
  check_4d("upconv2x2", "input", x);
  check_4d("upconv2x2", "weight", w);
  check_same_device("upconv2x2", {&x, &w, &b});
  const Shape& s = x.shape();
  int N = narrow(s[0]), C = narrow(s[1]), H = narrow(s[2]), W = narrow(s[3]), Ko = narrow(w.shape()[1]);
  UNET_CHECK(w.shape()[0] == C && w.shape()[2] == 2 && w.shape()[3] == 2, "upconv2x2: weight ", shape_str(w.shape()),
             " does not fit input ", shape_str(s), " (want [", C, ",K,2,2])");
  UNET_CHECK(b.value().numel() == Ko, "upconv2x2: bias has ", b.value().numel(), " elements for ", Ko,
             " output channels");
  Device d = x.device();
  const kernels::Precision prec = conv_precision();
  OpRange r("upconv2x2");
  Tensor y = Tensor::empty({N, Ko, 2 * H, 2 * W}, DType::F32, d);
  table(d).upconv2x2_forward(stream(d), prec, x.value().f32(), w.value().f32(), b.value().f32(), y.f32(), N, C, H, W,
                             Ko);
  Var out = make_output(y, {&x, &w, &b});
  if (out.requires_grad()) {
    Tape::current().record("upconv2x2", [x, w, b, out, N, C, H, W, Ko, d, prec] {
      if (!out.grad().defined()) return;
      const float* dy = out.grad().f32();
      if (x.requires_grad()) {
        Tensor dx = Tensor::empty(x.shape(), DType::F32, d);
        table(d).upconv2x2_backward_data(stream(d), prec, dy, w.value().f32(), dx.f32(), N, C, H, W, Ko);
        x.accumulate_grad(dx);
      }
      if (w.requires_grad() || b.requires_grad()) {
        Tensor dw = Tensor::empty(w.shape(), DType::F32, d), db = Tensor::empty(b.shape(), DType::F32, d);
        table(d).upconv2x2_backward_weight(stream(d), prec, x.value().f32(), dy, dw.f32(), db.f32(), N, C, H, W, Ko);
        if (w.requires_grad()) w.accumulate_grad(dw);
        if (b.requires_grad()) b.accumulate_grad(db);
      }
    });
  }
  return out;
}

Var crop_concat(const Var& skip, const Var& up) {
  check_4d("crop_concat", "skip", skip);
  check_4d("crop_concat", "up", up);
  check_same_device("crop_concat", {&skip, &up});
  const Shape &ss = skip.shape(), &us = up.shape();
  int N = narrow(ss[0]), Cs = narrow(ss[1]), Hs = narrow(ss[2]), Ws = narrow(ss[3]);
  int Cu = narrow(us[1]), Hu = narrow(us[2]), Wu = narrow(us[3]);
  UNET_CHECK(us[0] == N && Hs >= Hu && Ws >= Wu, "crop_concat: skip ", shape_str(ss), " cannot be cropped to up ",
             shape_str(us));
  Device d = skip.device();
  OpRange r("crop_concat");
  Tensor y = Tensor::empty({N, Cs + Cu, Hu, Wu}, DType::F32, d);
  table(d).crop_concat_forward(stream(d), skip.value().f32(), up.value().f32(), y.f32(), N, Cs, Hs, Ws, Cu, Hu, Wu);
  Var out = make_output(y, {&skip, &up});
  if (out.requires_grad()) {
    Tape::current().record("crop_concat", [skip, up, out, N, Cs, Hs, Ws, Cu, Hu, Wu, d] {
      if (!out.grad().defined()) return;
      Tensor ds = Tensor::empty(skip.shape(), DType::F32, d), du = Tensor::empty(up.shape(), DType::F32, d);
      table(d).crop_concat_backward(stream(d), out.grad().f32(), ds.f32(), du.f32(), N, Cs, Hs, Ws, Cu, Hu, Wu);
      if (skip.requires_grad()) skip.accumulate_grad(ds);
      if (up.requires_grad()) up.accumulate_grad(du);
    });
  }
  return out;
}

Var dropout(const Var& x, float p, Rng& rng) {
  UNET_CHECK(p >= 0.0f && p < 1.0f, "dropout: probability ", p, " outside [0, 1)");
  Device d = x.device();
  OpRange r("dropout");
  int64_t n = x.value().numel();
  uint64_t seed = rng.seed(), offset = rng.take(static_cast<uint64_t>(n));
  // Captured in a CUDA graph: the offset relative to the step's first, whose value each replay writes.
  const uint64_t* base = nullptr;
  if (const Capture* cap = current_capture()) {
    UNET_CHECK(d == cap->device, "dropout: a step captured for the ", device_name(cap->device), " runs it on the ",
               device_name(d));
    UNET_CHECK(cap->rng == &rng, "dropout: a captured step must take its masks from the Rng given to its graph");
    base = cap->rng_base;
    offset -= cap->host.rng_base;
  }
  Tensor y = Tensor::empty(x.shape(), DType::F32, d);
  table(d).dropout_forward(stream(d), x.value().f32(), y.f32(), n, p, seed, offset, base);
  Var out = make_output(y, {&x});
  if (out.requires_grad()) {
    Tape::current().record("dropout", [x, out, n, p, seed, offset, base, d] {
      if (!out.grad().defined()) return;
      Tensor dx = Tensor::empty(x.shape(), DType::F32, d);
      table(d).dropout_backward(stream(d), out.grad().f32(), dx.f32(), n, p, seed, offset, base);
      x.accumulate_grad(dx);
    });
  }
  return out;
}

Var softmax_xent(const Var& logits, const Tensor& labels, const Tensor& weights) {
  check_4d("softmax_xent", "logits", logits);
  const Shape& s = logits.shape();
  int N = narrow(s[0]), Kc = narrow(s[1]), H = narrow(s[2]), W = narrow(s[3]);
  Shape pix{N, H, W};
  UNET_CHECK(labels.defined() && labels.dtype() == DType::I32 && shape_numel(labels.shape()) == N * int64_t(H) * W,
             "softmax_xent: labels must be i32 with one value per pixel of ", shape_str(pix), ", got ",
             labels.defined() ? shape_str(labels.shape()) : std::string("none"));
  UNET_CHECK(!weights.defined() || (weights.dtype() == DType::F32 && weights.numel() == labels.numel()),
             "softmax_xent: weight map must be f32 ", shape_str(pix), ", got ", shape_str(weights.shape()));
  Device d = logits.device();
  UNET_CHECK(labels.device() == d && (!weights.defined() || weights.device() == d),
             "softmax_xent: logits, labels and weights must be on one device");
  if (d == Device::CPU) {
    const int32_t* l = labels.i32();
    for (int64_t i = 0; i < labels.numel(); ++i)
      UNET_CHECK(l[i] >= 0 && l[i] < Kc, "softmax_xent: label ", l[i], " at pixel ", i, " outside [0, ", Kc, ")");
  }
  OpRange r("softmax_xent");
  Tensor loss = Tensor::empty({1}, DType::F32, d);
  Tensor dlogits = Tensor::empty(s, DType::F32, d);
  table(d).softmax_xent(stream(d), logits.value().f32(), labels.i32(), weights.defined() ? weights.f32() : nullptr,
                        loss.f32(), dlogits.f32(), N, Kc, H, W);
  Var out = make_output(loss, {&logits});
  if (out.requires_grad()) {
    Tape::current().record("softmax_xent", [logits, out, dlogits, d]() mutable {
      if (!out.grad().defined()) return;
      // d loss/d logits was computed in the forward pass; scale it by the incoming gradient. When
      // this loss is the root of backward() that gradient is 1, known without a device read.
      if (!out.impl()->grad_is_one) {
        float g = out.grad().to_vector()[0];
        if (g != 1.0f) {
          std::vector<float> v = dlogits.to_vector();  // rare (a loss inside a larger graph): via the host
          for (float& e : v) e *= g;
          dlogits = Tensor::from_vector(dlogits.shape(), v).to(d);
        }
      }
      logits.accumulate_grad(dlogits);
    });
  }
  return out;
}

Tensor softmax(const Tensor& logits) {
  UNET_CHECK(logits.ndim() == 4, "softmax: logits must be NCHW, got ", shape_str(logits.shape()));
  Device d = logits.device();
  OpRange r("softmax_forward");
  Tensor p = Tensor::empty(logits.shape(), DType::F32, d);
  table(d).softmax_forward(stream(d), logits.f32(), p.f32(), narrow(logits.dim(0)), narrow(logits.dim(1)),
                           narrow(logits.dim(2)), narrow(logits.dim(3)));
  return p;
}

}  // namespace unet::ops
