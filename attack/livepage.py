"""The eavesdropper's live page: reconstructions appear per node as frames arrive.

A tiny HTTP server (standard library) with three paths: `/` the page, `/events` a server-sent
event stream (one JSON event per reconstructed frame, plus counters once a second), `/stats`
the counters as JSON. Binds 127.0.0.1 unless told otherwise.
"""

import errno
import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>splitleak: live reconstructions</title>
<style>
 body { font-family: sans-serif; margin: 1.5em; background: #fafafa; }
 .node { margin-bottom: 1.2em; } .node h2 { font-size: 1.05em; margin: 0.2em 0; }
 .strip { display: flex; flex-wrap: wrap; gap: 4px; }
 .strip figure { margin: 0; text-align: center; font-size: 0.7em; color: #555; }
 .strip img { width: 70px; height: 70px; image-rendering: pixelated; border: 1px solid #ccc; }
 #stats { color: #333; margin-bottom: 1em; }
</style></head>
<body>
<h1>What the eavesdropper sees</h1>
<p>Each image is reconstructed from a %(shape)s activation read off the MQTT topic
<code>%(topic)s</code>; the device never sent a pixel.</p>
<div id="stats">waiting for frames…</div>
<div id="nodes"></div>
<script>
const KEEP = 24;
const nodes = document.getElementById("nodes");
function strip(node) {
  let el = document.getElementById("node-" + node);
  if (!el) {
    el = document.createElement("div"); el.className = "node"; el.id = "node-" + node;
    el.innerHTML = "<h2></h2><div class='strip'></div>";
    el.querySelector("h2").textContent = "node " + node;
    nodes.appendChild(el);
  }
  return el.querySelector(".strip");
}
const events = new EventSource("/events");
events.addEventListener("frame", (e) => {
  const f = JSON.parse(e.data), s = strip(f.node);
  const fig = document.createElement("figure");
  fig.className = "frame";
  fig.innerHTML = "<img alt='reconstruction'><figcaption></figcaption>";
  fig.querySelector("img").src = "data:image/png;base64," + f.png;
  fig.querySelector("figcaption").textContent = "#" + f.seq;
  s.prepend(fig);
  while (s.children.length > KEEP) s.lastChild.remove();
});
events.addEventListener("stats", (e) => {
  const s = JSON.parse(e.data);
  document.getElementById("stats").textContent =
    `frames seen ${s.seen}, reconstructed ${s.reconstructed}, rejected ${s.rejected_total}`;
});
</script></body></html>
"""


class LivePage:
    """Serve the page and fan events out to every connected browser."""

    def __init__(self, host: str, port: int, topic: str, stats, activation_shape: tuple):
        """`activation_shape`: what the decoder reads, e.g. `decoder.input_shape[1:]`."""
        self.topic, self.stats = topic, stats
        self.html = (PAGE % {"topic": topic,
                             "shape": "x".join(map(str, activation_shape))}).encode()
        self._clients: list[queue.Queue] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        try:
            self.server = ThreadingHTTPServer((host, port), self._handler())
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OSError(f"port {port} on {host} is in use: choose another with "
                              "--web HOST:PORT") from None
            raise OSError(f"cannot serve the live page on {host}:{port}: {exc.strerror}") from None
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        threading.Thread(target=self._tick, daemon=True).start()

    def publish(self, kind: str, data: dict) -> None:
        message = f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()
        with self._lock:
            for q in self._clients:
                q.put(message)

    def _tick(self) -> None:
        while not self._stopped.wait(1.0):
            self.publish("stats", self.stats())

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            for q in self._clients:
                q.put(None)
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        page = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the terminal for the eavesdropper's output
                pass

            def do_GET(self):
                if self.path == "/":
                    self._send(200, "text/html; charset=utf-8", page.html)
                elif self.path == "/stats":
                    self._send(200, "application/json", json.dumps(page.stats()).encode())
                elif self.path == "/events":
                    self._stream()
                else:
                    self._send(404, "text/plain", b"not found")

            def _send(self, code, kind, body):
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _stream(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                q: queue.Queue = queue.Queue()
                with page._lock:
                    page._clients.append(q)
                try:
                    while (message := q.get()) is not None:
                        self.wfile.write(message)
                        self.wfile.flush()
                except OSError:  # the browser went away
                    pass
                finally:
                    with page._lock:
                        page._clients.remove(q)

        return Handler
