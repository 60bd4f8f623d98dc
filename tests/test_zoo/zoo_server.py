"""A loopback HTTP server for the zoo tests, and a test-only model index pointing at it."""
import hashlib
import http.server
import os.path as osp
import threading

import yaml


class LoopbackServer:
    """Serves ``files`` (``{'/name': bytes}``) on 127.0.0.1 from a thread and counts requests.

    ``truncate`` names paths that announce their full ``Content-Length`` and then close the
    connection after half the bytes (a dropped download).
    """

    def __init__(self):
        self.files, self.truncate, self.requests = {}, set(), []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                server.requests.append(self.path)
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header('Content-Type', 'application/octet-stream')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                if self.path in server.truncate:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.httpd.server_address[1]}'
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_index(path, models, config_root):
    """Write a model-index.yml at ``path`` holding ``models`` (metafile ``Models`` entries);
    ``Config`` paths are made relative to the index's directory from ``config_root``."""
    root = osp.dirname(str(path))
    for m in models:
        m['Config'] = osp.relpath(osp.join(config_root, m['Config']), root)
    with open(path, 'w') as f:
        yaml.safe_dump({'Models': models}, f, sort_keys=False)
    return str(path)
