"""The local stack: moto on 127.0.0.1, provisioned from template.yaml, and the Lambda runtime."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from infra.local.moto_app import build_app
from infra.local.provision import ProvisionedStack, check_loopback, provision_stack
from infra.local.runtime import LocalRuntime
from infra.local.template import PseudoParameters

LOG = logging.getLogger(__name__)

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = REPOSITORY_ROOT / "template.yaml"
LOOPBACK = "127.0.0.1"

# These loggers write request URLs and parameters at INFO and below.
QUIET_LOGGERS = ("werkzeug", "botocore", "urllib3", "stripe", "twilio")
MOTO_PROCESS_STOP_S = 10.0


class LocalStack:
    """Start moto, provision the template in it and build the in-process runtime.

    Every started component is registered with `add_component` and `stop()` stops them in
    reverse order, so later components (HTTP API server, emulators) can be added the same way.
    moto keeps its state per process, shared by every server in it: `start()` resets that
    state unless reset_state is False, which lets stacks with distinct names run side by side.
    With moto_process, moto runs in a process of its own (see infra.local.moto_app), whose state
    starts empty.
    """

    def __init__(
        self,
        template_path: str | Path = DEFAULT_TEMPLATE,
        *,
        port: int = 0,
        parameter_overrides: Mapping[str, Any] | None = None,
        secret_values: Mapping[str, str] | None = None,
        attribute_overrides: Mapping[str, Mapping[str, Any]] | None = None,
        extra_environment: Mapping[str, str] | None = None,
        visibility_timeout_override: int | None = None,
        pseudo: PseudoParameters | None = None,
        reset_state: bool = True,
        moto_process: bool = False,
    ) -> None:
        self.template_path = Path(template_path)
        self.reset_state = reset_state
        self.moto_process = moto_process
        self.port = port
        self.parameter_overrides = dict(parameter_overrides or {})
        self.secret_values = dict(secret_values or {})
        self.attribute_overrides = dict(attribute_overrides or {})
        self.extra_environment = dict(extra_environment or {})
        self.visibility_timeout_override = visibility_timeout_override
        self.pseudo = pseudo or PseudoParameters()
        self.components: list[tuple[str, Callable[[], None]]] = []
        self._endpoint_url: str | None = None
        self._provisioned: ProvisionedStack | None = None
        self._runtime: LocalRuntime | None = None

    @property
    def endpoint_url(self) -> str:
        if self._endpoint_url is None:
            raise RuntimeError("the local stack is not started")
        return self._endpoint_url

    @property
    def provisioned(self) -> ProvisionedStack:
        if self._provisioned is None:
            raise RuntimeError("the local stack is not started")
        return self._provisioned

    @property
    def runtime(self) -> LocalRuntime:
        if self._runtime is None:
            raise RuntimeError("the local stack is not started")
        return self._runtime

    def add_component(self, name: str, stop: Callable[[], None]) -> None:
        """Register a started component whose stop function stop() calls in reverse order."""
        self.components.append((name, stop))

    def start(self) -> LocalStack:
        """Start moto, provision the template and build the runtime. Stop all on failure."""
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        # No AWS client of this process may look for credentials on the metadata endpoint.
        os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

        try:
            self._start_moto()
            self._provisioned = provision_stack(
                self.template_path,
                self.endpoint_url,
                parameter_overrides=self.parameter_overrides,
                secret_values=self.secret_values,
                attribute_overrides=self.attribute_overrides,
                pseudo=self.pseudo,
            )
            self._runtime = LocalRuntime(
                self._provisioned,
                extra_environment=self.extra_environment,
                visibility_timeout_override=self.visibility_timeout_override,
            )
            self.add_component("lambda runtime", self._runtime.close)
        except BaseException:
            self.stop()
            raise
        LOG.info("local stack started", extra={"endpoint_url": self.endpoint_url})
        return self

    def _start_moto(self) -> None:
        if self.moto_process:
            process = MotoProcess(self.port)
            port = process.start()
            self.add_component("moto process", process.stop)
            self._endpoint_url = check_loopback(f"http://{LOOPBACK}:{port}")
        else:
            server = _moto_server_class()(ip_address=LOOPBACK, port=self.port, verbose=False)
            server.start()
            self.add_component("moto server", server.stop)
            host, port = server.get_host_and_port()
            self._endpoint_url = check_loopback(f"http://{host}:{port}")

        if not self.reset_state:
            return
        request = urllib.request.Request(  # noqa: S310 (loopback URL checked above)
            f"{self._endpoint_url}/moto-api/reset", method="POST"
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            response.read()

    def stop(self) -> None:
        """Stop every component in reverse start order, then raise the first error if any."""
        first_error: BaseException | None = None
        while self.components:
            name, stop = self.components.pop()
            try:
                stop()
            except Exception as exc:
                LOG.error(
                    "component failed to stop",
                    extra={"component": name, "error_type": type(exc).__name__},
                )
                first_error = first_error or exc
        self._runtime = None
        self._provisioned = None
        self._endpoint_url = None
        if first_error is not None:
            raise first_error

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _moto_server_class() -> Any:
    from moto.server import MotoRequestHandler, ThreadedMotoServer
    from werkzeug.serving import make_server

    class LocalMotoServer(ThreadedMotoServer):  # type: ignore[misc]
        """moto's threaded server serving the local stack's application (see moto_app)."""

        def _server_entry(self) -> None:
            self._server = make_server(
                self._ip_address, self._port, build_app(), True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return LocalMotoServer


class MotoProcess:
    """moto served by `python -m infra.local.moto_app` in a process of its own."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> int:
        """Start the process and return the port it listens on."""
        self._process = subprocess.Popen(  # noqa: S603 (this interpreter, a module of ours)
            [sys.executable, "-m", "infra.local.moto_app", "--port", str(self.port)],
            cwd=REPOSITORY_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.startswith("ready "):
            self.stop()
            raise RuntimeError("the moto process exited before it listened")
        return int(line.split()[1])

    def stop(self) -> None:
        """Close the process's standard input, which stops it, and wait for it."""
        if self._process is None:
            return
        process, self._process = self._process, None
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=MOTO_PROCESS_STOP_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
