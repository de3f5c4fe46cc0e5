/* The masking chapter's in-browser MAE (maelib/webmodel.py writes the HTML this script fills in).
 *
 * Each <div class="mae-live" data-config="..."> becomes a control: the original picture beside the same
 * picture whose patches the reader hides and shows by clicking or dragging, a mask-ratio slider that draws a random mask, a choice of
 * validation images and "open your own image" (read here with FileReader, never uploaded). Every change
 * runs the ONNX model (config.base + "mae.onnx") with onnxruntime-web on WebAssembly, one thread, and
 * shows the reconstruction, the visible patches pasted back and the loss on hidden patches.
 * Where the runtime or the model cannot load (not published, or the page opened from file://), a
 * one-line note says so and the precomputed slider of the page is the control.
 *
 * Nothing of the runtime or the model loads until the reader presses "Run the model in your browser": the
 * tour measured them at 17.6 MB of the page's 27.7, and a reader who only reads should not pay for them.
 *
 * For tests and benchmarks, the element gets `maeLive`: {start() (what the button does; returns ready),
 * ready (a promise, settled once started), state ("idle", "loading", "ready" or "unavailable"),
 * setVisible(array of L 0/1), drawRandom(ratio), update() -> promise of {reconstruction, pasted, loss,
 * visible, hidden, ms}, last (the latest of these)}.
 */
(function () {
  "use strict";
  var runtime = null; // one promise per page: onnxruntime-web loaded and set up
  var HIDDEN = "rgb(128, 128, 128)"; // a hidden patch: maelib.reference.HIDDEN_GREY, fully opaque

  function loadRuntime(base) {
    if (!runtime) {
      runtime = new Promise(function (ok, fail) {
        if (window.ort) return ok(window.ort);
        var s = document.createElement("script");
        s.src = base + "ort.wasm.min.js";
        s.onload = function () { return window.ort ? ok(window.ort) : fail(new Error("the runtime did not load")); };
        s.onerror = function () { fail(new Error("the runtime is not published with this page")); };
        document.head.appendChild(s);
      }).then(function (ort) {
        ort.env.wasm.wasmPaths = base; // the .mjs and .wasm beside ort.wasm.min.js, never a CDN
        ort.env.wasm.numThreads = 1; // a static page is not cross-origin isolated: no threads
        ort.env.wasm.proxy = false;
        return ort;
      });
    }
    return runtime;
  }

  var TEMPLATE =
    '<div class="mae-live-row">' +
    '<label>mask ratio <input type="range" class="mae-live-ratio" min="0" max="0.95" step="0.05" value="0.75">' +
    ' <b class="mae-live-ratio-value"></b></label>' +
    '<label>image <select class="mae-live-image"></select></label>' +
    '<label class="mae-live-open">open your own image <input type="file" accept="image/*" class="mae-live-file"></label>' +
    "</div>" +
    '<div class="mae-live-panels">' +
    '<figure><figcaption>original</figcaption><canvas class="mae-live-original"></canvas></figure>' +
    '<figure><figcaption>what the encoder sees <span class="mae-live-hint">(click or drag)</span></figcaption>' +
    '<canvas class="mae-live-input"></canvas></figure>' +
    '<figure><figcaption>decoder output, every patch</figcaption><canvas class="mae-live-recon"></canvas></figure>' +
    '<figure><figcaption>visible patches pasted back</figcaption><canvas class="mae-live-pasted"></canvas></figure>' +
    "</div>" +
    '<p class="mae-live-help">Click or drag over the second picture to hide or show patches. The decoder predicts ' +
    "every patch but was trained on hidden ones only; the last picture keeps the visible patches as they are.</p>" +
    '<p class="mae-live-status">loss on hidden patches (MSE on this image\'s hidden pixels, RGB in [0, 1]): ' +
    '<b class="mae-live-loss">&ndash;</b>' +
    ' <span class="mae-live-count"></span></p>';

  function setup(root) {
    if (root.maeLive) return;
    var cfg = JSON.parse(root.getAttribute("data-config"));
    var S = cfg.size, G = cfg.size / cfg.patch, L = G * G, scale = Math.max(1, Math.floor(256 / S));
    var base = new URL(cfg.base, document.baseURI).href;
    var pool = JSON.parse(root.querySelector("script.mae-live-images").textContent);
    var note = root.querySelector(".mae-live-note");
    var ui = document.createElement("div");
    ui.className = "mae-live-ui";
    ui.hidden = true;
    ui.innerHTML = TEMPLATE;
    root.appendChild(ui);
    var $ = function (sel) { return ui.querySelector(sel); };
    var ratio = $(".mae-live-ratio"), choice = $(".mae-live-image"), file = $(".mae-live-file");
    var original = $(".mae-live-original"), input = $(".mae-live-input"), recon = $(".mae-live-recon");
    var pasted = $(".mae-live-pasted");
    [original, input, recon, pasted].forEach(function (c) { c.width = c.height = S * scale; });
    var work = document.createElement("canvas"); // the image at the model's size, S x S
    work.width = work.height = S;
    var wctx = work.getContext("2d", {willReadFrequently: true});

    var session = null, pixels = null, visible = new Float32Array(L).fill(1);
    var running = null, queued = false;
    var api = root.maeLive = {state: "idle", last: null};
    root.setAttribute("data-state", "idle");

    function addChoice(name) {
      var o = document.createElement("option");
      o.value = String(choice.options.length);
      o.textContent = name;
      choice.appendChild(o);
      return o.value;
    }

    function loadImage(src) { // -> RGBA pixels (S * S * 4), centre-cropped to a square and resized
      return new Promise(function (ok, fail) {
        var img = new Image();
        img.onload = function () {
          var side = Math.min(img.naturalWidth, img.naturalHeight);
          wctx.imageSmoothingQuality = "high";
          wctx.clearRect(0, 0, S, S);
          wctx.drawImage(img, (img.naturalWidth - side) / 2, (img.naturalHeight - side) / 2, side, side, 0, 0, S, S);
          ok(wctx.getImageData(0, 0, S, S).data);
        };
        img.onerror = function () { fail(new Error("this file is not an image the browser can read")); };
        img.src = src;
      });
    }

    function normalised() { // RGBA pixels -> (1, 3, S, S) float32, normalised like the training images
      var x = new Float32Array(3 * S * S);
      for (var c = 0; c < 3; c++) {
        for (var i = 0; i < S * S; i++) x[c * S * S + i] = (pixels[4 * i + c] / 255 - cfg.mean[c]) / cfg.std[c];
      }
      return x;
    }

    function drawPlanes(canvas, planes) { // (1, 3, S, S) in [0, 1] -> the canvas, upscaled without smoothing
      var im = wctx.createImageData(S, S);
      for (var i = 0; i < S * S; i++) {
        for (var c = 0; c < 3; c++) im.data[4 * i + c] = Math.round(255 * planes[c * S * S + i]);
        im.data[4 * i + 3] = 255;
      }
      wctx.putImageData(im, 0, 0);
      blit(canvas);
    }

    function blit(canvas) { // the work canvas -> ``canvas``
      var ctx = canvas.getContext("2d");
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(work, 0, 0, S * scale, S * scale);
      return ctx;
    }

    function drawInput() { // the original, and the image with hidden patches in opaque grey (as in every
      var im = wctx.createImageData(S, S); // figure) under the patch grid
      im.data.set(pixels);
      wctx.putImageData(im, 0, 0);
      blit(original);
      var ctx = blit(input), p = cfg.patch * scale;
      ctx.fillStyle = HIDDEN; // hidden means hidden: nothing of the image shows through
      for (var k = 0; k < L; k++) if (visible[k] < 0.5) ctx.fillRect((k % G) * p, Math.floor(k / G) * p, p, p);
      ctx.strokeStyle = "rgba(255, 255, 255, 0.35)";
      ctx.beginPath();
      for (var g = 1; g < G; g++) {
        ctx.moveTo(g * p + 0.5, 0); ctx.lineTo(g * p + 0.5, S * scale);
        ctx.moveTo(0, g * p + 0.5); ctx.lineTo(S * scale, g * p + 0.5);
      }
      ctx.stroke();
    }

    async function infer() {
      var t0 = performance.now(), ort = window.ort, sent = visible.slice();
      var out = await session.run({image: new ort.Tensor("float32", normalised(), [1, 3, S, S]),
                                   visible: new ort.Tensor("float32", sent, [1, L])});
      drawPlanes(recon, out.reconstruction.data);
      drawPlanes(pasted, out.pasted.data);
      var hidden = sent.reduce(function (n, v) { return n + (v < 0.5 ? 1 : 0); }, 0);
      var r = {reconstruction: out.reconstruction.data, pasted: out.pasted.data, loss: out.loss.data[0],
               visible: Array.from(sent), hidden: hidden, ms: performance.now() - t0};
      $(".mae-live-loss").textContent = hidden ? r.loss.toFixed(4) : "none hidden";
      $(".mae-live-count").textContent = "(" + hidden + " of " + L + " patches hidden; computed in " +
        Math.round(r.ms) + " ms)";
      root.setAttribute("data-loss", String(r.loss));
      api.last = r;
      return r;
    }

    function update() { // redraw now; run the model, once more after a run in flight if asked meanwhile
      drawInput();
      if (running) { queued = true; return running; }
      running = infer().then(function (r) {
        running = null;
        if (queued) { queued = false; return update(); }
        return r;
      }, function (e) { running = null; queued = false; throw e; });
      return running;
    }

    function drawRandom(r) { // hide round(r * L) random patches, keeping at least one visible
      var order = Array.from({length: L}, function (_, i) { return i; });
      for (var i = L - 1; i > 0; i--) {
        var j = Math.floor(Math.random() * (i + 1)), t = order[i];
        order[i] = order[j]; order[j] = t;
      }
      var n = Math.min(L - 1, Math.round(r * L));
      visible.fill(1);
      for (var k = 0; k < n; k++) visible[order[k]] = 0;
      $(".mae-live-ratio-value").textContent = Number(r).toFixed(2);
      return update();
    }

    function show(src) {
      return loadImage(src).then(function (px) { pixels = px; return update(); });
    }

    var painting = null; // the visibility a drag paints (the opposite of the first patch's)
    function patchAt(e) {
      var b = input.getBoundingClientRect();
      var col = Math.floor((e.clientX - b.left) / b.width * G), row = Math.floor((e.clientY - b.top) / b.height * G);
      return col < 0 || col >= G || row < 0 || row >= G ? -1 : row * G + col;
    }
    function paint(k) {
      if (k >= 0 && visible[k] !== painting) { visible[k] = painting; update(); }
    }
    input.addEventListener("pointerdown", function (e) {
      var k = patchAt(e);
      if (k < 0) return;
      painting = visible[k] > 0.5 ? 0 : 1;
      input.setPointerCapture(e.pointerId);
      paint(k);
    });
    input.addEventListener("pointermove", function (e) { if (painting !== null) paint(patchAt(e)); });
    input.addEventListener("pointerup", function () { painting = null; });
    input.addEventListener("pointercancel", function () { painting = null; });
    ratio.addEventListener("input", function () { drawRandom(parseFloat(ratio.value)); });
    choice.addEventListener("change", function () { show(pool[parseInt(choice.value, 10)].src); });
    file.addEventListener("change", function () {
      var f = file.files && file.files[0];
      if (!f) return;
      var reader = new FileReader(); // the file stays in this page: nothing is sent anywhere
      reader.onload = function () {
        pool.push({name: "your image: " + f.name, src: reader.result});
        choice.value = addChoice("your image: " + f.name);
        show(reader.result).catch(function (e) { $(".mae-live-count").textContent = e.message; });
      };
      reader.readAsDataURL(f);
    });
    pool.forEach(function (p) { addChoice(p.name); });

    function unavailable(reason) {
      start.hidden = true;
      api.state = "unavailable";
      root.setAttribute("data-state", "unavailable");
      ui.hidden = true;
      note.textContent = "The in-browser model is not available here (" + reason + "); the precomputed slider " +
        "below works offline.";
    }

    api.setVisible = function (v) { visible.set(v); return update(); };
    api.drawRandom = drawRandom;
    api.update = update;
    var go, started = new Promise(function (ok) { go = ok; });
    var start = document.createElement("button");
    start.type = "button";
    start.className = "mae-live-start";
    start.textContent = "Run the model in your browser (it downloads the ONNX runtime and the model, once)";
    api.start = function () {
      start.hidden = true;
      go();
      return api.ready;
    };
    start.addEventListener("click", api.start);
    api.ready = (async function () {
      if (location.protocol === "file:") throw new Error("page opened from a file: serve the book over HTTP, " +
        "e.g. python -m http.server -d _build/html");
      if (typeof WebAssembly !== "object") throw new Error("this browser has no WebAssembly");
      note.textContent = "The precomputed slider below needs nothing more; this control computes each " +
        "reconstruction in your browser.";
      root.insertBefore(start, ui);
      await started;
      api.state = "loading";
      root.setAttribute("data-state", "loading");
      note.textContent = "Loading the runtime and the model…";
      var ort = await loadRuntime(base);
      try {
        session = await ort.InferenceSession.create(base + "mae.onnx", {executionProviders: ["wasm"]});
      } catch (e) {
        throw new Error("the model could not load: " + (e && e.message ? e.message : e));
      }
      pixels = await loadImage(pool[0].src);
      ui.hidden = false;
      note.textContent = "Computed in your browser (ONNX Runtime Web); an image you open stays on your computer.";
      await drawRandom(parseFloat(ratio.value));
      api.state = "ready";
      root.setAttribute("data-state", "ready");
      return api;
    })();
    api.ready.catch(function (e) { unavailable(e && e.message ? e.message : String(e)); });
  }

  document.querySelectorAll(".mae-live").forEach(setup);
})();
