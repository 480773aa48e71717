#!/usr/bin/env bash
# libunet as a user gets it: `cmake --install` into a temporary prefix; the examples of examples/
# built against that prefix alone, with find_package(unet) (shared and static) and with pkg-config
# (a strict C99 compile); each run on an ISBI slice and compared bit for bit with `unet predict`
# (the mask's pixels, the probabilities' bytes); the installed library's exports and dependencies;
# the API through Python's ctypes; and the inference-only configuration's dependencies.
# Usage: install_test.sh BUILD_DIR UNET_BINARY SAME_PIXELS_BINARY
set -euo pipefail
source "$(dirname "$0")/script_lib.sh"
BUILD="$1" UNET="$2" SAME="$3"
start=$(date +%s)

# The package.
P="$T/prefix"
cmake --install "$BUILD" --prefix "$P" > "$T/install.log"
LIB="$(dirname "$(find "$P" -name unetConfig.cmake)")/../.."
for f in include/unet/unet.h; do [ -s "$P/$f" ] || fail "install did not place $f"; done
for f in libunet.a libunet.so pkgconfig/unet.pc cmake/unet/unetConfig.cmake cmake/unet/unetConfigVersion.cmake \
         cmake/unet/unetTargets.cmake; do
  [ -e "$LIB/$f" ] || fail "install did not place lib/$f"
done
SO="$(readlink -f "$LIB/libunet.so")"
soname="$(readelf -d "$SO" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
[ "$soname" = "libunet.so.$(sed -n 's/#define UNET_ABI_VERSION \([0-9]*\)/\1/p' "$P/include/unet/unet.h")" ] ||
  fail "soname '$soname' does not carry UNET_ABI_VERSION"
# Only the API is exported; nothing of the trainer's dependencies is needed.
others="$(nm -D --defined-only "$SO" | awk '{print $3}' | grep -v '^unet_' | grep -v '^UNET_0$' || true)"
[ -z "$others" ] || fail "libunet.so exports more than the C API: $(echo "$others" | head -5)"
needed="$(readelf -d "$SO" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
for bad in libtiff libgomp libomp libjpeg libz; do
  [[ "$needed" != *"$bad"* ]] || fail "libunet.so needs $bad: $needed"
done
echo "libunet.so: soname $soname, $(stat -c %s "$SO") bytes, needs: $needed"

# A small trained model (two iterations: weights that still differ from pixel to pixel), and the reference.
"$UNET" train --images "$DATA/image" --labels "$DATA/label" --val-split 1 --out "$T/run" --device cpu \
  --depth 2 --base 4 --tile 108 --iterations 2 --val-every 0 --quiet > /dev/null
MODEL="$T/run/checkpoint.safetensors"
IMG="$DATA/image/05.png"
"$UNET" predict --model "$MODEL" --images "$IMG" -o "$T/cli/s05" --npy --device cpu > /dev/null 2>&1
bytes=$((2 * 512 * 512 * 4))
tail -c "$bytes" "$T/cli/s05_probs.npy" > "$T/cli.f32"

# find_package(unet): the C example (shared and static) and the C++ one, from the prefix alone.
cmake -S "$ROOT/examples" -B "$T/ex" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_BUILD_TYPE=Release > "$T/ex.log" ||
  { cat "$T/ex.log"; fail "configuring the examples against the installed package"; }
cmake --build "$T/ex" -j2 > "$T/exb.log" 2>&1 || { cat "$T/exb.log"; fail "building the examples"; }
for exe in segment segment_static; do
  "$T/ex/$exe" "$MODEL" "$IMG" "$T/$exe.pgm" --device cpu 2> /dev/null || fail "$exe failed"
  "$SAME" "$T/$exe.pgm" "$T/cli/s05_mask.png" || fail "$exe's mask differs from unet predict's"
done
"$T/ex/segment_probs" "$MODEL" "$IMG" "$T/cpp.f32"
cmp "$T/cpp.f32" "$T/cli.f32" || fail "segment_probs' probabilities differ from unet predict's"
! ldd "$T/ex/segment_static" | grep -q libunet || fail "segment_static is linked with libunet.so"

# pkg-config, the way a Makefile would: a strict C99 compile of the same example.
export PKG_CONFIG_PATH="$LIB/pkgconfig"
[ "$(pkg-config --modversion unet)" = "$(sed -n 's/#define UNET_VERSION_STRING "\(.*\)"/\1/p' "$P/include/unet/unet.h")" ] ||
  fail "pkg-config's version of unet differs from the header's"
cc -std=c99 -Wall -Wextra -pedantic -Werror "$ROOT/examples/c/segment.c" $(pkg-config --cflags --libs unet) \
  -Wl,-rpath,"$(pkg-config --variable=libdir unet)" -o "$T/segment_pc"
"$T/segment_pc" "$MODEL" "$IMG" "$T/pc.pgm" --device cpu 2> /dev/null || fail "the pkg-config build failed"
"$SAME" "$T/pc.pgm" "$T/cli/s05_mask.png" || fail "the pkg-config build's mask differs from unet predict's"
# Errors reach the user as a status and a message.
expect_error "UNET_ERR_IO: cannot open safetensors file '$T/none.safetensors'" \
  "$T/segment_pc" "$T/none.safetensors" "$IMG" "$T/x.pgm"
expect_error "UNET_ERR_INVALID_ARGUMENT: tile size of 570 px is not valid" "$T/segment_pc" "$MODEL" "$IMG" "$T/x.pgm" --tile 570

# Python's ctypes: the library as any C caller sees it.
python3 - "$SO" "$MODEL" "$IMG" "$T/pc.pgm" <<'PY' || fail "ctypes"
import ctypes as C, sys
lib = C.CDLL(sys.argv[1])
lib.unet_version.restype = C.c_char_p
lib.unet_last_error.restype = C.c_char_p
class Image(C.Structure):
    _fields_ = [("data", C.c_void_p), ("width", C.c_int32), ("height", C.c_int32), ("channels", C.c_int32),
                ("dtype", C.c_int32), ("row_stride", C.c_size_t)]
model, pred, img = C.c_void_p(), C.c_void_p(), Image()
assert lib.unet_model_load(sys.argv[2].encode(), C.byref(model)) == 0, lib.unet_last_error()
assert lib.unet_predictor_create(model, None, C.byref(pred)) == 0, lib.unet_last_error()
assert lib.unet_image_read(sys.argv[3].encode(), C.byref(img)) == 0, lib.unet_last_error()
labels = (C.c_uint8 * (img.width * img.height))()
assert lib.unet_predict_labels(pred, C.byref(img), labels, len(labels)) == 0, lib.unet_last_error()
pgm = open(sys.argv[4], "rb").read()
assert bytes(255 if v else 0 for v in labels) == pgm[-len(labels):], "ctypes labels differ from the C example's"
assert lib.unet_model_load(b"/nonexistent.safetensors", C.byref(model)) == 2
assert b"nonexistent" in lib.unet_last_error()
lib.unet_image_free(C.byref(img)); lib.unet_predictor_free(pred)
print("ctypes: libunet", lib.unet_version().decode(), "ok")
PY

# The inference-only configuration needs none of the trainer's dependencies (configured, not built:
# its library is the one tested above, built from the same sources with the same flags).
cmake -S "$ROOT" -B "$T/infer" -DUNET_INFERENCE_ONLY=ON -DUNET_WITH_CUDA=OFF > "$T/infer.log" ||
  { cat "$T/infer.log"; fail "configuring -DUNET_INFERENCE_ONLY=ON"; }
for dep in TIFF_LIBRARY nlohmann_json_DIR OpenMP_CXX_FLAGS Catch2_DIR benchmark_DIR; do
  ! grep -q "^$dep:" "$T/infer/CMakeCache.txt" || fail "the inference-only configuration looked for $dep"
done
grep -q "unet_shared" "$T/infer/Makefile" 2> /dev/null || grep -rq "unet_shared" "$T/infer/CMakeFiles/Makefile2" ||
  fail "the inference-only configuration has no libunet target"
! grep -q "unet_core\b" "$T/infer/CMakeFiles/Makefile2" || fail "the inference-only configuration builds the trainer"
echo "install and examples test passed in $(( $(date +%s) - start )) s"
