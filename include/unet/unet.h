/* libunet: U-Net segmentation (Ronneberger, Fischer and Brox, 2015) from C, C++ or anything that
 * calls C (Python's ctypes, ...). Load a trained model from its safetensors checkpoint, make a
 * predictor (device, tiling, test-time augmentation), and segment images of any size with the
 * overlap-tile scheme of `unet predict`, bit for bit the same results. See docs/embedding.md.
 *
 * Conventions
 *  - Every function that can fail returns a unet_status; UNET_OK is 0. After a failure,
 *    unet_last_error() names the problem (the file, the option, the value, the limit). Nothing
 *    aborts the calling process: every failure inside, running out of memory included, becomes a
 *    status.
 *  - Objects are opaque handles made by *_create / *_load and released by the matching *_free
 *    (which accepts NULL). Buffers passed in stay the caller's; nothing keeps a pointer to them
 *    after the call returns.
 *  - Threads: models and predictors are immutable once made. Any number of threads may share one
 *    model and one or several predictors and predict at the same time. unet_last_error() is per
 *    thread.
 *  - Images are row-major, interleaved: sample (y, x, c) of an image of C channels is at
 *    row y, element x * C + c (rows may be padded: see row_stride). Probabilities come out planar:
 *    class k of pixel (y, x) at [k * height * width + y * width + x].
 *
 * C99; no C++ type or exception crosses this header. ABI: the shared library's soname
 * (libunet.so.UNET_ABI_VERSION) changes whenever a binary made against an older header could break.
 */
#ifndef UNET_UNET_H
#define UNET_UNET_H

#include <stddef.h>
#include <stdint.h>

#define UNET_VERSION_MAJOR 0
#define UNET_VERSION_MINOR 2
#define UNET_VERSION_PATCH 0
#define UNET_VERSION_STRING "0.2.0"
/* MAJOR * 10000 + MINOR * 100 + PATCH, for compile-time tests. */
#define UNET_VERSION (UNET_VERSION_MAJOR * 10000 + UNET_VERSION_MINOR * 100 + UNET_VERSION_PATCH)
#define UNET_ABI_VERSION 1

#if defined(_WIN32)
#define UNET_API
#elif defined(__GNUC__)
#define UNET_API __attribute__((visibility("default")))
#else
#define UNET_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum unet_status {
  UNET_OK = 0,
  UNET_ERR_INVALID_ARGUMENT = 1, /* a null pointer, a size or option out of range, a wrong channel count */
  UNET_ERR_IO = 2,               /* a file cannot be opened or read */
  UNET_ERR_BAD_MODEL = 3,        /* the checkpoint is damaged, truncated, or not a U-Net of this project */
  UNET_ERR_BAD_IMAGE = 4,        /* an image file cannot be decoded, or its format is not one libunet reads */
  UNET_ERR_OUT_OF_MEMORY = 5,    /* memory refused, or a prediction would not fit the memory there is */
  UNET_ERR_NO_DEVICE = 6,        /* a GPU was asked for and this build or machine has none */
  UNET_ERR_UNSUPPORTED = 7,      /* a valid request this build cannot do (e.g. a precision) */
  UNET_ERR_CANCELLED = 8,        /* the progress callback asked to stop */
  UNET_ERR_INTERNAL = 9          /* anything else (a GPU fault, a bug): the message says what */
} unet_status;

/* "0.2.0": the version of the library linked at run time (UNET_VERSION_STRING is the header's). */
UNET_API const char* unet_version(void);
/* The run-time library's UNET_VERSION number, to compare with the header's. */
UNET_API int unet_version_number(void);
/* The message of the last call of this thread that failed ("" when none has); valid until the
 * thread's next call into libunet. */
UNET_API const char* unet_last_error(void);
/* A fixed name for a status: "UNET_ERR_BAD_MODEL" (an int: any value a caller holds is answered). */
UNET_API const char* unet_status_name(int status);

/* ---- models ----------------------------------------------------------------------------------- */

typedef struct unet_model unet_model;

/* Loads a checkpoint written by `unet train` (or by PyTorch with the same names; docs/checkpoints.md).
 * Everything in it is checked before the network is built: the header, every tensor's offsets and
 * shape against the architecture its metadata declares, every weight finite. */
UNET_API unet_status unet_model_load(const char* path, unet_model** out);
/* The same from the file's bytes in memory; `name` (may be NULL) stands for the file in messages.
 * The bytes are copied: the buffer may be freed when the call returns. */
UNET_API unet_status unet_model_load_memory(const void* data, size_t size, const char* name, unet_model** out);
/* Predictors made from a model keep what they need: the model may be freed before them. */
UNET_API void unet_model_free(unet_model* model);

typedef struct unet_model_info {
  int32_t in_channels; /* channels an input image must have */
  int32_t classes;     /* probabilities per pixel */
  int32_t depth;       /* 2x2 poolings (4 in the paper) */
  int32_t base;        /* channels of the first level (64 in the paper) */
  /* Valid input tiles are tile_min + k * tile_step (k >= 0); a tile of t px gives t - 2 * margin
   * px of output. margin is the context each output pixel sees on each side (92 in the paper). */
  int32_t tile_min;
  int32_t tile_step;
  int32_t margin;
  int64_t parameters; /* weights and biases */
} unet_model_info;

UNET_API unet_status unet_model_get_info(const unet_model* model, unet_model_info* info);
/* The output side of an input tile of `tile` px, or UNET_ERR_INVALID_ARGUMENT with the nearest
 * valid tiles in the message. */
UNET_API unet_status unet_model_tile_output(const unet_model* model, int32_t tile, int32_t* output);

/* ---- predictors ------------------------------------------------------------------------------- */

typedef enum unet_device {
  UNET_DEVICE_AUTO = 0, /* the GPU when this build has CUDA and a GPU is present, else the CPU */
  UNET_DEVICE_CPU = 1,
  UNET_DEVICE_CUDA = 2
} unet_device;

/* The convolutions' arithmetic. TF32 needs a GPU with tensor cores (compute capability 8.0 or newer); BF16
 * such a GPU or a CPU with AVX-512 BF16 (avx512_bf16). Asked of a device without them, unet_predictor_create
 * returns UNET_ERR_UNSUPPORTED. */
typedef enum unet_precision {
  UNET_PRECISION_FP32 = 0, /* every device: the bit-faithful reference */
  UNET_PRECISION_TF32 = 1, /* tensor cores: 10-bit mantissa products, fp32 sums */
  UNET_PRECISION_BF16 = 2, /* tensor cores or AVX-512 BF16: bfloat16 operands, fp32 sums */
  UNET_PRECISION_AUTO = 3  /* the default: TF32 on a GPU with tensor cores, else FP32 (as `unet predict`) */
} unet_precision;

/* Called after each batch of tiles with the tiles done and the total; return nonzero to stop the
 * prediction (it then returns UNET_ERR_CANCELLED and leaves the output partly written). Called on
 * the thread that called the prediction. */
typedef int (*unet_progress_fn)(void* user, int64_t tiles_done, int64_t tiles_total);

typedef struct unet_predictor_options {
  uint32_t struct_size;      /* sizeof(unet_predictor_options), set by unet_predictor_options_init */
  int32_t device;            /* unet_device */
  int32_t threads;           /* CPU threads on this predictor's work, the caller's included; 0: all the
                                library's pool has (UNET_NUM_THREADS, else the CPUs); 1: the calling
                                thread alone, never waiting for other predictors */
  int32_t tile;              /* input tile side in px; 0: chosen per image for speed */
  int32_t batch;             /* tiles per forward pass, 1..256; 0: 1 on the CPU, 4 on a GPU */
  int32_t tta;               /* nonzero: average the 8 rotations and flips of every tile (8x the work) */
  int32_t precision;         /* unet_precision */
  unet_progress_fn progress; /* may be NULL */
  void* progress_user;
  int32_t cuda_graph; /* nonzero: on a GPU, an image's full batches replay one CUDA graph (the same bits,
                         less host time a batch; for images of at least 8 full forward passes). Since 0.2 */
} unet_predictor_options;

/* Fills the defaults: auto device, all threads, automatic tile, default batch, no TTA, fp32, no CUDA graph. */
UNET_API void unet_predictor_options_init(unet_predictor_options* options);

typedef struct unet_predictor unet_predictor;

/* `options` may be NULL (the defaults). Checks every option against the model (a tile must be
 * valid for its depth) and resolves the device; the first predictor on a GPU copies the weights there. */
UNET_API unet_status unet_predictor_create(const unet_model* model, const unet_predictor_options* options,
                                           unet_predictor** out);
UNET_API void unet_predictor_free(unet_predictor* predictor);
/* The device the predictor runs on: UNET_DEVICE_CPU or UNET_DEVICE_CUDA. */
UNET_API unet_status unet_predictor_device(const unet_predictor* predictor, unet_device* device);

typedef struct unet_plan {
  int32_t tile;   /* input tile side */
  int32_t output; /* output tile side */
  int32_t step;   /* distance between tile origins */
  int32_t tiles_y, tiles_x;
  int64_t working_bytes; /* memory a prediction needs besides the input and output buffers */
} unet_plan;

/* How an image of height x width px would be cut, and the memory it would take. */
UNET_API unet_status unet_predictor_plan(const unet_predictor* predictor, int32_t height, int32_t width,
                                         unet_plan* plan);

typedef enum unet_dtype {
  UNET_U8 = 1,  /* 0..255, normalised by 1/255 */
  UNET_U16 = 2, /* 0..65535, normalised by 1/65535 */
  UNET_F32 = 3  /* taken as they are (already normalised): must be finite */
} unet_dtype;

typedef struct unet_image {
  const void* data; /* sample (y, x, c) at (const char*)data + y * row_stride + (x * channels + c) * size */
  int32_t width, height, channels;
  int32_t dtype;     /* unet_dtype */
  size_t row_stride; /* bytes from one row to the next; 0: width * channels * sample size */
} unet_image;

/* Class probabilities of every pixel into `probs`, planar: classes x height x width floats (
 * `count` is the buffer's length in floats and must be at least that). The image must have the
 * model's in_channels. */
UNET_API unet_status unet_predict_probabilities(const unet_predictor* predictor, const unet_image* image, float* probs,
                                                size_t count);
/* The most probable class of every pixel into `labels`: height x width bytes (models of up to
 * 256 classes). Ties go to the lower class, as in `unet predict`'s mask. */
UNET_API unet_status unet_predict_labels(const unet_predictor* predictor, const unet_image* image, uint8_t* labels,
                                         size_t count);

/* Streaming, for images whose probability map need not be held whole: band(user, y0, rows, probs)
 * receives the probabilities of image rows y0 .. y0 + rows - 1, planar (classes x rows x width),
 * from top to bottom; `probs` is valid during the call only. Return nonzero to stop (the
 * prediction then returns UNET_ERR_CANCELLED). Memory stays that of unet_predictor_plan. */
typedef int (*unet_band_fn)(void* user, int32_t y0, int32_t rows, const float* probs);
UNET_API unet_status unet_predict_bands(const unet_predictor* predictor, const unet_image* image, unet_band_fn band,
                                        void* user);

/* ---- reading images --------------------------------------------------------------------------- */

/* Decodes PNG, JPEG, BMP, PGM/PPM, TGA, GIF, PSD or HDR (8- and 16-bit; TIFF needs the `unet`
 * command line) into `image`: interleaved samples in the file's own type (UNET_U8, UNET_U16, or
 * UNET_F32 for HDR), row_stride 0. The same decoder and checks as `unet predict`. Release with
 * unet_image_free. */
UNET_API unet_status unet_image_read(const char* path, unet_image* image);
/* Frees what unet_image_read allocated and clears `image` (NULL or a cleared image: nothing). */
UNET_API void unet_image_free(unet_image* image);

#ifdef __cplusplus
}
#endif

#endif /* UNET_UNET_H */
