"""The daemon's HTTP face: a JSON control plane under ``/api/`` and a web console.

One implementation, two faces (moto's server mode): the routes call the same daemon methods
the Python API offers. ``settings`` (no framework) is what the daemon and the command line
import; ``app`` (FastAPI, uvicorn) loads only when a daemon starts a console.
"""
