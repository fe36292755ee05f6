"""The central exporter: prometheus-klipper-exporter's `/probe?target=HOST:PORT` for any
Moonraker, from the same catalogue and collectors as the component (docs/remote.md).

`python -m moonraker_prometheus.remote`: one process on the Prometheus host; per target one
websocket to Moonraker (`client.py`), read into a `Host` (`host.py`) that the component's
collectors render (`target.py`), served over HTTP (`server.py`), configured by `config.py`.
"""
