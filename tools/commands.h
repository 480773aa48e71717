// The subcommands of `unet` and their options: what `unet <command> --help` prints and what
// tools/unet.cpp and tools/restore_cmd.cpp accept. One list, so the help cannot drift from the parser.
// Names are shared across subcommands: --images (an image, a TIFF stack or a folder), --labels,
// --out / -o, --model, --device, --tile, --batch, --seed.
#pragma once
#include "tools/cli.h"

namespace unet::cli {

inline const Option kDevice{"device", "cpu|cuda|auto", "where to run (default auto: the GPU when there is one)"};
inline const Option kPrecision{"precision", "fp32|tf32|bf16",
                               "the convolutions' arithmetic (default tf32 on a GPU with tensor cores, else fp32; "
                               "bf16 also on a CPU with AVX-512 BF16)"};

inline const Command kTrain{
    "train",
    "--images DIR|STACK --labels DIR|STACK [options]",
    "Trains a U-Net as the paper does.\n"
    "By default SGD with momentum 0.99 on one large tile per iteration, the Eq. 2 weight map, elastic deformations;\n"
    "writes checkpoints, the loss curve and validation scores. Ctrl-C stops cleanly, --resume continues.",
    {{"images", "DIR|STACK", "training images: a folder (matched to --labels by sorted name) or a TIFF stack"},
     {"labels", "DIR|STACK", "labels: 0/255 masks (255 = cell) or class indices"},
     {"val-images", "DIR|STACK", "a separate validation set (with --val-labels)"},
     {"val-labels", "DIR|STACK", "labels of --val-images"},
     {"val-split", "N", "validate on the last N training images instead"},
     {"out", "DIR", "output folder (default out/train): checkpoint, best, loss.csv/png, val.csv"},
     kDevice,
     kPrecision,
     {"tile", "PX", "input tile side (default 572; must be valid for the depth)"},
     {"iterations", "N", "iterations of the run (default 1000)"},
     {"lr", "X", "learning rate (default 0.002)"},
     {"momentum", "X", "SGD momentum (default 0.99)"},
     {"weight-decay", "X", "L2 weight decay (default 0)"},
     {"lr-step", "N", "multiply the rate by --lr-gamma every N iterations (default 0: constant)"},
     {"lr-gamma", "X", "the step factor (default 0.1)"},
     {"lr-poly", "P", "poly decay instead: lr (1 - i / iterations)^P (default 0: off; not with --lr-step)"},
     {"warmup", "N", "raise the rate linearly from 0 over the first N iterations (default 0)"},
     {"optimizer", "sgd|nesterov|adam", "the update rule (default sgd, the paper's; adam uses --momentum as beta1)"},
     {"batch", "N", "tiles per iteration, each from a random image (default 1, the paper's)"},
     {"val-every", "N", "validate every N iterations (default 100; 0: at the end)"},
     {"checkpoint-every", "N", "checkpoint every N iterations (default 100; 0: at the end)"},
     {"seed", "S", "random seed of initialisation, augmentation and dropout (default 1)"},
     {"resume", "CKPT", "continue the run of this checkpoint (left-out options: the checkpoint's)"},
     {"extend-to", "N", "with --resume: train a finished run on to N iterations"},
     {"allow-changes", "", "with --resume: accept options that differ from the checkpoint's"},
     {"stop-at", "N", "stop after iteration N, checkpointed (as an interruption would)"},
     {"init", "CKPT", "start from this checkpoint's weights (a new run)"},
     {"in-channels", "N", "image channels (default 1)"},
     {"classes", "N", "classes (default 2)"},
     {"depth", "N", "pooling levels (default 4)"},
     {"base", "N", "channels of the first level (default 64)"},
     {"dropout", "P", "dropout at the end of the contracting path (default 0.5)"},
     {"w0", "X", "Eq. 2 border weight (default 10; 0: class balancing only)"},
     {"sigma", "PX", "Eq. 2 border width (default 5)"},
     {"balance", "none|max-one|inverse", "class balancing of the weight map (default max-one)"},
     {"elastic-sigma", "PX", "elastic deformation strength (default 10)"},
     {"no-augment", "", "no augmentation at all"},
     {"val-tile", "PX", "tile for validation (default 0: chosen for speed)"},
     {"cuda-graph", "on|off", "on a GPU, replay one training step as a CUDA graph (default off; docs/gpu.md)"},
     {"quiet", "", "no progress output"}}};

inline const Command kPredict{
    "predict",
    "--model CKPT --images IMG|STACK -o PREFIX [options]",
    "Segments an image, or every slice of a TIFF stack.\n"
    "Overlap tiles with mirrored borders; writes PREFIX_probs.tif (one float page per class),\n"
    "PREFIX_mask.png and PREFIX_overlay.png, band by band.",
    {{"model", "CKPT|NAME",
      "a checkpoint written by unet train, or a shipped model's name (isbi2012, isbi2012-heldout)"},
     {"images", "IMG|STACK", "the image or TIFF stack to segment", {"input"}},
     {"out", "PREFIX", "output prefix (-o)"},
     kDevice,
     kPrecision,
     {"tile", "PX", "input tile side (default 0: chosen for speed, docs/predict.md)"},
     {"batch", "N", "tiles per forward pass (default 1 on the CPU, 4 on a GPU)"},
     {"tta", "", "average the 8 rotations and flips"},
     {"cuda-graph", "on|off", "on a GPU, replay one batch's forward pass as a CUDA graph (default off)"},
     {"npy", "", "also write PREFIX_probs.npy"},
     {"labels", "LABEL", "score the segmentation against these labels"}}};

inline const Command kEval{
    "eval",
    "(--model CKPT --images DIR|STACK|IMG | --probs DIR|STACK|IMG) --labels DIR|STACK|IMG [options]",
    "Scores segmentations with the ISBI 2012 metrics.\n"
    "Pixel, Rand and warping error and IoU of a model's segmentations, or of probability maps given as\n"
    "files, against labels: per slice at the best threshold, and their mean (with V_rand and V_info).",
    {{"model", "CKPT|NAME", "segment --images with this checkpoint (or a shipped model: isbi2012, isbi2012-heldout)"},
     {"images", "DIR|STACK|IMG", "the images to segment", {"input"}},
     {"probs", "DIR|STACK|IMG", "probability maps instead (unet predict's _probs.tif, or P(cell))"},
     {"labels", "DIR|STACK|IMG", "the reference labels"},
     {"format", "table|csv|json", "report format (default table)"},
     {"out", "FILE", "write the report there (-o) instead of standard output"},
     kDevice,
     {"tile", "PX", "input tile side (default 0: chosen for speed)"},
     {"batch", "N", "tiles per forward pass"},
     {"tta", "", "average the 8 rotations and flips"}}};

inline const Command kWeightmap{"weightmap",
                                "--labels IMG -o OUT.png [options]",
                                "Writes the paper's Eq. 2 weight map of a label image.\n"
                                "As a PNG scaled to its maximum and as a float TIFF.",
                                {{"labels", "IMG", "the label image"},
                                 {"out", "OUT.png", "the output PNG (-o); the floats go to OUT.tif"},
                                 {"w0", "X", "border weight (default 10)"},
                                 {"sigma", "PX", "border width (default 5)"},
                                 {"classes", "N", "classes (default 2)"}}};

inline const Command kAugment{"augment",
                              "--images IMG --labels IMG -o DIR [options]",
                              "Writes augmented training samples as training draws them.\n"
                              "Image, labels and weight map of each sample as PNGs.",
                              {{"images", "IMG", "the image", {"image"}},
                               {"labels", "IMG", "its labels"},
                               {"out", "DIR", "output folder (-o)"},
                               {"count", "N", "samples (default 4)"},
                               {"seed", "S", "random seed (default 1)"},
                               {"elastic-sigma", "PX", "elastic deformation strength (default 10)"}}};

inline const Command kPlot{
    "plot",
    "-o OUT.png --series \"FILE=LABEL;FILE=LABEL\" [options]",
    "Draws several runs' curves on one PNG.\n"
    "A column of the CSV files training writes (loss.csv, val.csv) against their first, one colour per run.",
    {{"out", "OUT.png", "the output PNG (-o)"},
     {"series", "FILE=LABEL;...", "the CSV files and their legend labels, separated by ';'"},
     {"column", "NAME", "the column to draw (default loss; val.csv also has pixel_error)"},
     {"title", "T", "plot title (default: the column)"},
     {"ylabel", "Y", "y axis label"},
     {"smooth", "N", "running mean over N points (default 1: raw values)"},
     {"linear", "", "a linear y axis instead of a logarithmic one"}}};

inline const Command kExport{
    "export",
    "--model CKPT -o OUT.safetensors [options]",
    "Writes a weights-only copy of a checkpoint for shipping.\n"
    "Without the optimizer's state, optionally in half precision; the training metadata is kept.",
    {{"model", "CKPT", "the checkpoint"},
     {"out", "OUT.safetensors", "the model file to write (-o)"},
     {"fp16", "", "store the weights as F16 (half the size; prints the largest rounding error)"},
     {"note", "KEY=VALUE", "add the metadata entry note.KEY (e.g. the recipe, held-out scores)"}}};

inline const Command kInfo{
    "info",
    "--model CKPT|NAME",
    "Shows what a model file holds.\n"
    "Its architecture, storage type, training state, recorded options and notes.",
    {{"model", "CKPT|NAME", "a checkpoint or model file, or a shipped model's name (isbi2012, isbi2012-heldout)"}}};

inline const Command kInspect{
    "inspect",
    "--model CKPT [options]",
    "Per-layer training diagnostics of a checkpoint.\n"
    "How far each weight tensor moved from the initial weights of the run's seed, and, on an image,\n"
    "how many channels of each layer are dead (no positive value) and how many values are zero.",
    {{"model", "CKPT", "a checkpoint written by unet train"},
     {"image", "IMG", "also run the network on the centre tile of this image and report activations"},
     {"tile", "PX", "that tile's side (default 0: the largest valid one that fits, at most 572)"},
     {"seed", "S", "the seed of the initial weights (default: the one the checkpoint records)"},
     kDevice}};

inline const Command kDeviceCommand{"device", "", "Says which GPU this build sees, if any.", {}};

}  // namespace unet::cli
