/* segment: U-Net segmentation with libunet, from C.
 *
 *   segment MODEL.safetensors IMAGE MASK.pgm [--device auto|cpu|cuda] [--tile N] [--batch N]
 *           [--threads N] [--tta]
 *
 * Reads IMAGE (PNG, PGM, ...: unet_image_read), predicts the most probable class of every pixel
 * with the overlap-tile scheme of `unet predict`, and writes MASK as an 8-bit PGM with the values
 * of `unet predict`'s _mask.png: 0 and 255 for a two-class model (class 0 is black: the membranes
 * of ISBI 2012), the class index otherwise. Exit status 0 on success, 1 on any failure (with the
 * library's message), 2 on a bad command line. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unet/unet.h>

static int report(const char* what, unet_status status) {
  fprintf(stderr, "segment: %s: %s: %s\n", what, unet_status_name(status), unet_last_error());
  return 1;
}

static int show_progress(void* user, int64_t done, int64_t total) {
  (void)user;
  fprintf(stderr, "\r%lld/%lld tiles", (long long)done, (long long)total);
  if (done == total) fprintf(stderr, "\n");
  return 0; /* nonzero would cancel */
}

static int write_pgm(const char* path, const uint8_t* pixels, int width, int height) {
  FILE* f = fopen(path, "wb");
  if (!f) return 0;
  int ok = fprintf(f, "P5\n%d %d\n255\n", width, height) > 0 &&
           fwrite(pixels, 1, (size_t)width * (size_t)height, f) == (size_t)width * (size_t)height;
  return fclose(f) == 0 && ok;
}

int main(int argc, char** argv) {
  unet_predictor_options options;
  unet_model* model = NULL;
  unet_predictor* predictor = NULL;
  unet_image image = {0};
  unet_model_info info;
  uint8_t* labels = NULL;
  unet_status status;
  int i, rc = 1;

  if (argc < 4) {
    fprintf(stderr,
            "usage: segment MODEL.safetensors IMAGE MASK.pgm [--device auto|cpu|cuda] [--tile N] "
            "[--batch N] [--threads N] [--tta]\n");
    return 2;
  }
  unet_predictor_options_init(&options);
  options.progress = show_progress;
  for (i = 4; i < argc; ++i) {
    const char* value = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(argv[i], "--tta") == 0) {
      options.tta = 1;
    } else if (value && strcmp(argv[i], "--device") == 0) {
      options.device = strcmp(value, "cpu") == 0    ? UNET_DEVICE_CPU
                       : strcmp(value, "cuda") == 0 ? UNET_DEVICE_CUDA
                                                    : UNET_DEVICE_AUTO;
      ++i;
    } else if (value && strcmp(argv[i], "--tile") == 0) {
      options.tile = atoi(value), ++i;
    } else if (value && strcmp(argv[i], "--batch") == 0) {
      options.batch = atoi(value), ++i;
    } else if (value && strcmp(argv[i], "--threads") == 0) {
      options.threads = atoi(value), ++i;
    } else {
      fprintf(stderr, "segment: unknown option %s\n", argv[i]);
      return 2;
    }
  }

  if ((status = unet_model_load(argv[1], &model)) != UNET_OK) {
    report("loading the model", status);
    goto done;
  }
  if ((status = unet_model_get_info(model, &info)) != UNET_OK ||
      (status = unet_predictor_create(model, &options, &predictor)) != UNET_OK) {
    report("making the predictor", status);
    goto done;
  }
  if ((status = unet_image_read(argv[2], &image)) != UNET_OK) {
    report("reading the image", status);
    goto done;
  }
  labels = malloc((size_t)image.width * (size_t)image.height);
  if (!labels) {
    fprintf(stderr, "segment: out of memory\n");
    goto done;
  }
  status = unet_predict_labels(predictor, &image, labels, (size_t)image.width * (size_t)image.height);
  if (status != UNET_OK) {
    report("segmenting", status);
    goto done;
  }
  if (info.classes == 2)
    for (i = 0; i < image.width * image.height; ++i) labels[i] = labels[i] ? 255 : 0;
  if (!write_pgm(argv[3], labels, image.width, image.height)) {
    fprintf(stderr, "segment: cannot write %s\n", argv[3]);
    goto done;
  }
  rc = 0;

done:
  free(labels);
  unet_image_free(&image);
  unet_predictor_free(predictor);
  unet_model_free(model);
  return rc;
}
