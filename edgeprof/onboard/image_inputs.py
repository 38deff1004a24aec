"""Real inputs through a net, end to end (--span end-to-end): images or video frames from files on the board,
decoded with what the board has (Pillow, else OpenCV), resized to the net's input, normalized, copied to the
device, run forward and post-processed, each stage timed on its own. Runs ON the board, beside the runners in
the work folder (Python 3.6+, standard library; Pillow or cv2 imported here when present); a runner brings its
framework's part of the stages (normalize, copy, forward, post) as functions.

Files: --images-from PATH, a file or a folder (its regular files whose suffix is an image's or a video's, in name
order, not its subfolders); the iterations go through them in turn and start again after the last (wrap around),
so --iterations, --images and --duration-s may ask for more images than there are files. Files are opened
read-only.

Decoders (find_decoder): Pillow (PIL) when it imports, else OpenCV (cv2); neither is an error of kind
"unavailable" naming both. Video files need OpenCV (cv2.VideoCapture): Pillow reads still images only.
    decode: the file read and decoded to 8-bit RGB (Pillow: Image.open + convert("RGB"); OpenCV: cv2.imread, or
        the next frame of cv2.VideoCapture, + cvtColor BGR to RGB), one frame each time.
    resize: to the net's input height and width, bilinear, without keeping the aspect ratio or cropping.
The framework's stages (the runner's):
    normalize: the 8-bit pixels to a float tensor in the net's channel order, (pixel - mean) * scale per channel
        (--normalize: the host takes them from the prototxt's transform_param where it has one, else uses
        torchvision's ImageNet defaults, and says which in "source").
    copy: the images stacked into the input tensor and moved to the device, synchronized; on the CPU the
        stacking, which creates the input tensor.
    forward: the net on the input, synchronized on a GPU.
    post: the --post step for the model's kind (a runner's POSTPROCESSING table: softmax and top-5 for
        classifiers), its answer brought back to the host's Python lists.

Timing: each stage on the host's time.perf_counter, per iteration (one batch: at --batch 1 one image; decode and
resize summed over the batch's images), and the total of the iteration from its first decode to its answer, which
is the iteration's time in timing.py's loop (warm-up, adaptive stop, windows: its discipline). The first inference
and the warm-up iterations are left out of the stage figures as they are of the latency.
With --prefetch N, a thread decodes and resizes up to N images ahead into a bounded queue (queue.Queue(N)); the
iteration then waits for its images instead of decoding them (its "queue_wait" stage), and decode and resize are
the thread's times, outside the total. Pillow and OpenCV release the GIL while they decode, so the thread overlaps
the forward.
"""
import argparse
import json
import os
import queue
import threading
import time

if __package__:
    from . import timing
    from .harness import RunnerError
else:
    import timing
    from harness import RunnerError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v")
# The stages in the order they run; with --prefetch, "queue_wait" takes decode's and resize's place in the total.
STAGES = ("decode", "resize", "normalize", "copy", "forward", "post")
PREFETCH_STAGES = ("decode", "resize", "queue_wait", "normalize", "copy", "forward", "post")
INSTALL_HINT = ("install Pillow (pip install pillow; Debian/Ubuntu and JetPack: apt-get install python3-pil) or "
                "OpenCV (pip install opencv-python-headless; apt-get install python3-opencv) for the Python that "
                "runs edgeprof there")
# torchvision's ImageNet normalization (torchvision.transforms.Normalize with the mean and std of its models'
# weights: https://pytorch.org/vision/stable/models.html), as (pixel - mean) * scale on 8-bit RGB pixels.
TORCHVISION_NORMALIZATION = {"source": "torchvision defaults (ImageNet mean and std)", "order": "RGB",
                             "mean": [0.485 * 255, 0.456 * 255, 0.406 * 255],
                             "scale": [1 / (0.229 * 255), 1 / (0.224 * 255), 1 / (0.225 * 255)]}


# --- options -------------------------------------------------------------------------------------------

def _normalization(text):
    try:
        found = json.loads(text)
        ok = (isinstance(found, dict) and found.get("order") in ("RGB", "BGR")
              and all(isinstance(found.get(k), list) and len(found[k]) == 3
                      and all(isinstance(v, (int, float)) for v in found[k]) for k in ("mean", "scale")))
    except ValueError:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError('%r is not {"order": "RGB"|"BGR", "mean": [3 numbers], "scale": [3 '
                                         'numbers], "source": text}' % text)
    return found


def add_input_arguments(parser, posts):
    """--images-from, --images, --prefetch, --normalize and --post (one of `posts`, the runner's table)."""
    parser.add_argument("--images-from", metavar="PATH", help="--span end-to-end: an image or video file, or a "
                                                              "folder of them, on this machine")
    parser.add_argument("--images", type=int, help="--span end-to-end: run this many images (wrapping around)")
    parser.add_argument("--prefetch", type=int, default=0, help="decode up to N images ahead in a thread")
    parser.add_argument("--normalize", type=_normalization, default=TORCHVISION_NORMALIZATION,
                        help='JSON {"order": "RGB"|"BGR", "mean": [..3], "scale": [..3], "source": text}')
    parser.add_argument("--post", choices=sorted(posts), default="classifier",
                        help="the post-processing step for the model's kind")


def check_input_arguments(parser, args):
    """--span end-to-end and --images-from go together; --images and --prefetch only with them."""
    end_to_end = args.span == "end-to-end"
    if end_to_end != (args.images_from is not None):
        parser.error("--span end-to-end feeds the files of --images-from: give both or neither")
    if not end_to_end and (args.images is not None or args.prefetch):
        parser.error("--images and --prefetch are about the files of --span end-to-end")
    if args.prefetch < 0:
        parser.error("--prefetch must be at least 0")
    if args.images is not None:
        if args.images < 1:
            parser.error("--images must be at least 1")
        if args.iterations is not None or args.duration_s is not None:
            parser.error("--images, --iterations and --duration-s exclude each other")


def apply_images(args, batch):
    """--images N as the timed iterations that feed N images at `batch` (the last batch may run past N)."""
    if args.images is not None:
        args.iterations = -(-args.images // batch)


# --- files and decoders --------------------------------------------------------------------------------

def list_files(path):
    """The image and video files at `path` (one file, or a folder's regular files by name); RunnerError if none."""
    suffixes = IMAGE_SUFFIXES + VIDEO_SUFFIXES
    if os.path.isdir(path):
        files = [os.path.join(path, name) for name in sorted(os.listdir(path))
                 if name.lower().endswith(suffixes) and os.path.isfile(os.path.join(path, name))]
    elif os.path.isfile(path):
        files = [path] if path.lower().endswith(suffixes) else []
    else:
        raise RunnerError("input", "--images-from %s: no such file or folder" % path)
    if not files:
        raise RunnerError("input", "--images-from %s: no image or video file (%s)" % (path, ", ".join(suffixes)))
    return files


def is_video(path):
    return path.lower().endswith(VIDEO_SUFFIXES)


class PillowDecoder(object):
    name = "pillow"

    def __init__(self):
        import PIL
        from PIL import Image
        self.version = PIL.__version__
        self.image = Image
        # Image.Resampling came with Pillow 9.1; the module-level constants are the older spelling.
        self.bilinear = getattr(Image, "Resampling", Image).BILINEAR

    def frames(self, path):
        with self.image.open(path) as image:
            yield image.convert("RGB")

    def resize(self, image, width, height):
        return image.resize((width, height), self.bilinear)

    @staticmethod
    def pixels(image):
        """Height x width x RGB bytes."""
        return image.tobytes()


class OpenCVDecoder(object):
    name = "opencv"

    def __init__(self):
        import cv2
        self.version = cv2.__version__
        self.cv2 = cv2

    def frames(self, path):
        cv2 = self.cv2
        if not is_video(path):
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            if image is None:
                raise RunnerError("input", "OpenCV could not decode %s" % path)
            yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            return
        capture = cv2.VideoCapture(path)
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    return
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()

    def resize(self, image, width, height):
        return self.cv2.resize(image, (width, height), interpolation=self.cv2.INTER_LINEAR)

    @staticmethod
    def pixels(image):
        """Height x width x RGB, a numpy uint8 array."""
        return image


def find_decoder(files):
    """Pillow, else OpenCV; OpenCV where a file is a video. RunnerError "unavailable" naming both otherwise."""
    errors = []
    video = any(is_video(path) for path in files)
    for decoder in ((OpenCVDecoder,) if video else (PillowDecoder, OpenCVDecoder)):
        try:
            return decoder()
        except ImportError as e:
            errors.append("%s: %s" % (decoder.name, e))
    if video:
        raise RunnerError("unavailable", "decoding video needs OpenCV (cv2), which this Python cannot import (%s): "
                                         "install opencv-python-headless or python3-opencv" % "; ".join(errors))
    raise RunnerError("unavailable", "decoding images needs Pillow (PIL) or OpenCV (cv2), and this Python imports "
                                     "neither (%s): %s" % ("; ".join(errors), INSTALL_HINT))


class Frames(object):
    """Decoded and resized frames of `files` in turn, from the first again after the last: next() gives
    (pixels, decode ms, resize ms)."""

    def __init__(self, decoder, files, width, height):
        self.decoder, self.files, self.width, self.height = decoder, files, width, height
        self.index, self.current, self.since_wrap = 0, None, 0

    def _open_next(self):
        if self.index == len(self.files):
            if not self.since_wrap:
                raise RunnerError("input", "no frame could be read from %s" % ", ".join(self.files))
            self.index, self.since_wrap = 0, 0
        path = self.files[self.index]
        self.index += 1
        return path, self.decoder.frames(path)

    def next(self):
        while True:
            if self.current is None:
                self.current = self._open_next()
            path, frames = self.current
            t0 = time.perf_counter()
            try:
                image = next(frames, None)
            except RunnerError:
                raise
            except Exception as e:
                raise RunnerError("input", "%s could not decode %s: %s: %s"
                                  % (self.decoder.name, path, type(e).__name__, e))
            t1 = time.perf_counter()
            if image is not None:
                break
            self.current = None
        self.since_wrap += 1
        resized = self.decoder.resize(image, self.width, self.height)
        pixels = self.decoder.pixels(resized)
        return pixels, (t1 - t0) * 1e3, (time.perf_counter() - t1) * 1e3


class Prefetcher(object):
    """Frames decoded ahead by a thread into a queue of `depth`; next() gives (pixels, decode ms, resize ms,
    ms waited for the queue). An error in the thread comes out of the next() that reaches it."""

    def __init__(self, frames, depth):
        self.frames, self.queue, self.stopped = frames, queue.Queue(depth), threading.Event()
        self.thread = threading.Thread(target=self._fill, name="edgeprof-prefetch")
        self.thread.daemon = True
        self.thread.start()

    def _fill(self):
        while not self.stopped.is_set():
            try:
                item = self.frames.next()
            except Exception as e:
                item = e
            while not self.stopped.is_set():
                try:
                    self.queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if isinstance(item, Exception):
                return

    def next(self):
        t0 = time.perf_counter()
        item = self.queue.get()
        waited = (time.perf_counter() - t0) * 1e3
        if isinstance(item, Exception):
            raise item
        return item + (waited,)

    def close(self):
        self.stopped.set()
        self.thread.join(5)


# --- the pipeline --------------------------------------------------------------------------------------

class EndToEnd(object):
    """One iteration = `batch` images through the stages; step() returns (total ms, outputs) for timing.measure
    and keeps each stage's time. normalize(pixels) -> one image's tensor, copy(list) -> the input on the device,
    forward(input) -> outputs, post(outputs) -> the answer (lists)."""

    def __init__(self, source, batch, normalize, copy, forward, post, prefetch, decoder=None, files=()):
        self.source, self.batch, self.prefetch, self.decoder, self.files = source, batch, prefetch, decoder, files
        self.normalize, self.copy, self.forward, self.post = normalize, copy, forward, post
        self.names = PREFETCH_STAGES if prefetch else STAGES
        self.times = dict((name, []) for name in self.names)
        self.totals = []
        self.answer = None

    def step(self):
        start = time.perf_counter()
        taken = dict((name, 0.0) for name in self.names)
        images = []
        for _ in range(self.batch):
            found = self.source.next()
            images.append(found[0])
            taken["decode"] += found[1]
            taken["resize"] += found[2]
            if self.prefetch:
                taken["queue_wait"] += found[3]
        # Without prefetch the total starts at the first decode; with it, at the first wait for the queue.
        t = time.perf_counter()
        tensors = [self.normalize(pixels) for pixels in images]
        t, taken["normalize"] = _lap(t)
        device_input = self.copy(tensors)
        t, taken["copy"] = _lap(t)
        outputs = self.forward(device_input)
        t, taken["forward"] = _lap(t)
        self.answer = self.post(outputs)
        end, taken["post"] = _lap(t)
        total = (end - start) * 1e3
        for name in self.names:
            self.times[name].append(taken[name])
        self.totals.append(total)
        return total, outputs

    def finish(self, skip, args):
        """The prefetching thread stopped, and the "end_to_end" figures: each stage's statistics over the timed
        iterations (the first `skip`, the first inference and the warm-up, left out), the totals', and what ran."""
        if self.prefetch:
            self.source.close()
        decoder, files = self.decoder, self.files
        in_total = [n for n in self.names if not (self.prefetch and n in ("decode", "resize"))]
        return {
            "span": "end-to-end",
            "stages": list(self.names),
            "in_total": in_total,
            "stage_ms": dict((name, stage_statistics(self.times[name][skip:])) for name in self.names),
            "total_ms": stage_statistics(self.totals[skip:]),
            "per": "iteration of %d image(s)" % self.batch,
            "prefetch": self.prefetch,
            "decoder": {"name": decoder.name, "version": decoder.version},
            "files": len(files),
            "video": any(is_video(path) for path in files),
            "normalization": args.normalize,
            "post": args.post,
            "resize": "bilinear to the net's input, aspect ratio not kept",
            "last_answer": self.answer,
        }


def _lap(t):
    now = time.perf_counter()
    return now, (now - t) * 1e3


def stage_statistics(times):
    """median, p90, p99, mean and count of one stage's times (ms); None where there are none."""
    if not times:
        return None
    ordered = sorted(times)
    return {"median": timing.percentile(ordered, 50), "p90": timing.percentile(ordered, 90),
            "p99": timing.percentile(ordered, 99), "mean": sum(ordered) / len(ordered), "count": len(ordered)}


def open_pipeline(args, width, height, batch, normalize, copy, forward, post):
    """The EndToEnd over --images-from's files at the net's `width` x `height`, with the runner's stages: its
    frames read in the iteration, or by a Prefetcher with --prefetch N."""
    files = list_files(args.images_from)
    decoder = find_decoder(files)
    frames = Frames(decoder, files, width, height)
    source = Prefetcher(frames, args.prefetch) if args.prefetch else frames
    return EndToEnd(source, batch, normalize, copy, forward, post, args.prefetch, decoder, files)
