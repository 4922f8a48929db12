"""The model repository: a directory of models, each with numbered versions, loaded into memory.

    DIR/<model>/config.json          optional serving settings (see serving.config)
    DIR/<model>/<version>/model.pb   a NetDef (graphruntime.save / TracedModule.save)

Versions are positive integers; all versions present are loaded, a request without a version gets
the highest one. A version directory without a model file is ignored until the file appears, so
copying a new version in, or writing model.pb under a temporary name and renaming it, is safe.

Loading (at start, on `poll()`, or on `load_model`) builds the new predictors first and swaps
them in afterwards; the replaced version keeps answering the requests it already accepted and is
closed once they are done. No in-flight request fails because of a reload.

    >>> repo = ModelRepository("models")        # doctest: +SKIP
    >>> repo.load_all()                         # doctest: +SKIP
    >>> with repo.acquire("linear", "") as version:   # doctest: +SKIP
    ...     version.infer({"x": x})
"""
import contextlib
import logging
import os
import threading

from serving.config import ModelSettings
from serving.errors import ModelConfigError, NotFoundError, ServingError, UnavailableError
from serving.model import ModelVersion

log = logging.getLogger("serving.repository")

# Model file names, in order of preference, and how to load each.
MODEL_FILES = ("model.pb", "model.ember")


def load_predictor(path, num_threads=None):
    """Default predictor factory: a graphruntime.Predictor for model.pb, the mobile interpreter
    for model.ember."""
    if path.endswith(".ember"):
        try:
            from mobile import Interpreter  # noqa: PLC0415 - optional, loaded on demand
        except ImportError:
            raise ModelConfigError(f"{path}: serving .ember models needs mobile.Interpreter, "
                                   "which this installation does not provide") from None
        return Interpreter(path)
    import graphruntime  # noqa: PLC0415 - imported when the first model loads

    return graphruntime.Predictor(path, num_threads=num_threads)


class _Model:
    """Repository state of one model name."""

    def __init__(self, name):
        self.name = name
        self.versions = {}        # int -> ModelVersion (ready)
        self.failed = {}          # int -> reason
        self.settings = None
        self.config_text = None   # config.json content the loaded versions were built with
        self.override = None      # config JSON given with RepositoryModelLoad, replaces the file
        self.rejected_config = None  # config text that failed to parse (reported once)
        self.fingerprints = {}    # int -> (file path, mtime_ns, size) of loaded/failed versions
        self.state = "UNAVAILABLE"
        self.reason = ""
        self.unloaded = False     # explicitly unloaded: polling leaves it alone


class ModelRepository:
    """Loads models from `root` and hands out versions to requests.

    `predictor_factory(path, num_threads)` builds one predictor instance (default
    `load_predictor`). `metrics` is a serving.metrics.ServingMetrics or None.
    """

    def __init__(self, root, predictor_factory=None, metrics=None, drain_timeout=30.0):
        if not os.path.isdir(root):
            raise NotFoundError(f"model repository '{root}' is not a directory")
        self.root = os.path.abspath(root)
        self._factory = predictor_factory or load_predictor
        self._metrics = metrics
        self._drain_timeout = drain_timeout
        self._models = {}
        self._lock = threading.Lock()        # guards _models and every _Model's fields
        self._load_lock = threading.RLock()  # one load/unload at a time
        self._retiring = []
        self._poller = None
        self._stop_polling = threading.Event()

    # -- requests --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def acquire(self, name, version=""):
        """Yields the ModelVersion serving (`name`, `version`) and keeps it open until the block
        ends. `version` "" means the highest loaded version. NotFoundError / UnavailableError."""
        model_version = self.enter(name, version)
        try:
            yield model_version
        finally:
            model_version.leave()

    def enter(self, name, version=""):
        """Like `acquire` without the block: returns the ModelVersion marked in flight; the caller
        must call its `leave()` once the request is answered."""
        with self._lock:
            model_version = self._resolve(name, version)
            model_version.enter()
        return model_version

    def _resolve(self, name, version):
        model = self._models.get(name)
        if model is None:
            raise NotFoundError(f"unknown model '{name}'")
        if not model.versions:
            reason = f": {model.reason}" if model.reason else ""
            raise UnavailableError(f"model '{name}' is not ready{reason}")
        if not version:
            return model.versions[max(model.versions)]
        try:
            number = int(version)
        except ValueError:
            raise NotFoundError(f"model '{name}' has no version '{version}' "
                                "(versions are positive integers)") from None
        found = model.versions.get(number)
        if found is None:
            ready = ", ".join(str(v) for v in sorted(model.versions))
            raise NotFoundError(f"model '{name}' has no version {version} (ready: {ready})")
        return found

    def get(self, name, version=""):
        """The ModelVersion for (`name`, `version`) without marking a request in flight."""
        with self._lock:
            return self._resolve(name, version)

    def is_ready(self, name, version=""):
        """True if (`name`, `version`) can take requests now."""
        try:
            self.get(name, version)
            return True
        except ServingError:
            return False

    def ready_versions(self, name):
        """Loaded version numbers of `name`, ascending; NotFoundError if unknown."""
        with self._lock:
            model = self._models.get(name)
            if model is None:
                raise NotFoundError(f"unknown model '{name}'")
            return sorted(model.versions)

    def all_versions(self, name=None):
        """Every loaded ModelVersion (of `name` if given), sorted by name and version."""
        with self._lock:
            models = [self._models[name]] if name in self._models else (
                [] if name else [self._models[n] for n in sorted(self._models)])
            return [m.versions[v] for m in models for v in sorted(m.versions)]

    def index(self, ready_only=False):
        """(name, version, state, reason) rows: one per loaded or failed version, one per model
        without any (version "")."""
        self._refresh_names()
        rows = []
        with self._lock:
            for name in sorted(self._models):
                model = self._models[name]
                for number in sorted(set(model.versions) | set(model.failed)):
                    if number in model.versions:
                        rows.append((name, str(number), "READY", ""))
                    elif not ready_only:
                        rows.append((name, str(number), "UNAVAILABLE", model.failed[number]))
                if not model.versions and not model.failed and not ready_only:
                    rows.append((name, "", model.state, model.reason))
        return rows

    # -- loading ---------------------------------------------------------------------------------

    def load_all(self):
        """Loads every model found under the root (at startup)."""
        for name in self._model_dirs():
            try:
                self.load_model(name, explicit=False)
            except ServingError as e:
                log.error("model '%s' failed to load: %s", name, e)

    def poll(self):
        """Loads new models and versions, reloads changed ones, unloads removed ones."""
        present = set(self._model_dirs())
        with self._lock:
            known = dict(self._models)
        for name in sorted(present):
            model = known.get(name)
            if model is not None and model.unloaded:
                continue
            try:
                self.load_model(name, explicit=False)
            except ServingError as e:
                log.error("model '%s' failed to load: %s", name, e)
        for name, model in known.items():
            if name not in present and model.versions:
                log.info("model '%s' removed from the repository; unloading", name)
                self.unload_model(name)

    def start_polling(self, interval):
        """Calls poll() every `interval` seconds in a background thread."""
        def run():
            while not self._stop_polling.wait(interval):
                try:
                    self.poll()
                except Exception:  # noqa: BLE001 - keep polling whatever one round hits
                    log.exception("repository poll failed")
        self._poller = threading.Thread(target=run, name="repository-poll", daemon=True)
        self._poller.start()

    def load_model(self, name, config_override=None, explicit=True):
        """Loads or reloads `name` from its directory. Versions whose files or settings changed
        are rebuilt and swapped in; versions that disappeared are unloaded. `config_override`
        (config.json text) replaces the file's content from now on. An explicit load also
        retries versions that failed before; a poll (`explicit=False`) acts only on changes.
        Raises NotFoundError for an unknown directory and ModelConfigError when the model
        cannot be served."""
        if not _is_model_name(name):
            raise NotFoundError(f"unknown model '{name}'")
        model_dir = os.path.join(self.root, name)
        with self._load_lock:
            if not os.path.isdir(model_dir):
                raise NotFoundError(f"no model '{name}' in repository {self.root}")
            with self._lock:
                model = self._models.setdefault(name, _Model(name))
                if not explicit and model.unloaded:
                    return  # unloaded through the API since the poll looked: leave it
            source = f"'{name}' config" if config_override is not None else None
            text = config_override if config_override is not None else self._config_text(model, model_dir)
            if text == model.rejected_config and not explicit:
                return  # the same broken config as last time: already reported
            try:
                settings = ModelSettings.from_json(text, source or self._config_source(model, model_dir))
            except ModelConfigError as e:
                with self._lock:
                    model.rejected_config = text
                    if not model.versions:
                        model.state, model.reason = "UNAVAILABLE", str(e)
                raise
            with self._lock:
                model.rejected_config = None
                if explicit:
                    model.unloaded = False
                    if config_override is not None:
                        model.override = config_override
            files = self._version_files(model_dir)
            rebuild_all = text != model.config_text
            to_load = {number: found for number, found in files.items()
                       if rebuild_all or model.fingerprints.get(number) != found
                       or (explicit and number in model.failed)}
            removed = [number for number in model.versions if number not in files]
            forgotten = [number for number in model.failed if number not in files]
            if not (to_load or removed or forgotten or rebuild_all):
                if explicit and not model.versions:
                    raise ModelConfigError(f"model '{name}' cannot be served: {model.reason}")
                return
            loaded, failed = {}, {}
            for number, (path, _, _) in sorted(to_load.items()):
                try:
                    loaded[number] = ModelVersion(name, number, path, settings, self._factory,
                                                  self._metrics)
                    log.info("loaded model '%s' version %d from %s", name, number, path)
                except Exception as e:  # noqa: BLE001 - any load failure is reported per version
                    reason = str(e) if isinstance(e, ServingError) else f"{type(e).__name__}: {e}"
                    failed[number] = reason
                    log.error("model '%s' version %d failed to load: %s", name, number, reason)
            with self._lock:
                retired = [model.versions.pop(n) for n in removed]
                for number in removed + forgotten:
                    model.fingerprints.pop(number, None)
                    model.failed.pop(number, None)
                for number, version in loaded.items():
                    old = model.versions.get(number)
                    if old is not None:
                        retired.append(old)
                    model.versions[number] = version
                    model.failed.pop(number, None)
                    model.fingerprints[number] = to_load[number]
                for number, reason in failed.items():
                    # NOTE: a version whose rebuild failed keeps serving its previous build; the
                    # failure is reported in the index and the log, and retried when files change.
                    model.failed[number] = reason
                    model.fingerprints[number] = to_load[number]
                model.settings, model.config_text = settings, text
                if model.versions:
                    model.state, model.reason = "READY", ""
                else:
                    model.state = "UNAVAILABLE"
                    model.reason = "; ".join(
                        f"version {n}: {r}" for n, r in sorted(model.failed.items())) \
                        or "no version directory with a model file"
                state, reason = model.state, model.reason
            self._retire(retired)
        if state != "READY":
            raise ModelConfigError(f"model '{name}' cannot be served: {reason}")

    def unload_model(self, name):
        """Stops serving every version of `name`; requests already accepted still complete.
        Polling will not reload it until `load_model` is called. NotFoundError if unknown."""
        with self._load_lock:
            with self._lock:
                model = self._models.get(name)
                if model is None:
                    raise NotFoundError(f"unknown model '{name}'")
                retired = list(model.versions.values())
                model.versions.clear()
                model.failed.clear()
                model.fingerprints.clear()
                model.config_text = None
                model.rejected_config = None
                model.unloaded = True
                model.state, model.reason = "UNAVAILABLE", "unloaded"
            self._retire(retired)
        log.info("unloaded model '%s'", name)

    def close(self, timeout=None):
        """Stops polling and closes every version, waiting (bounded) for their requests."""
        self._stop_polling.set()
        with self._lock:
            versions = [v for m in self._models.values() for v in m.versions.values()]
            for model in self._models.values():
                model.versions.clear()
        self._retire(versions)
        for thread in list(self._retiring):
            thread.join(timeout)

    # -- helpers ---------------------------------------------------------------------------------

    def _retire(self, versions):
        """Closes replaced versions in the background once their in-flight requests are done."""
        for version in versions:
            thread = threading.Thread(target=version.close, args=(self._drain_timeout,),
                                      name=f"retire-{version.name}-{version.version}", daemon=True)
            thread.start()
            self._retiring = [t for t in self._retiring if t.is_alive()] + [thread]

    def _config_text(self, model, model_dir):
        """The config.json text in force: the API override, else the file ("" if absent)."""
        if model.override is not None:
            return model.override
        try:
            with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
                return f.read()
        except FileNotFoundError:
            return ""
        except OSError as e:
            raise ModelConfigError(f"{os.path.join(model_dir, 'config.json')}: {e}") from None

    def _config_source(self, model, model_dir):
        if model.override is not None:
            return f"'{model.name}' config"
        return os.path.join(model_dir, "config.json")

    def _model_dirs(self):
        try:
            entries = sorted(os.listdir(self.root))
        except OSError as e:
            log.error("cannot list model repository %s: %s", self.root, e)
            return []
        return [e for e in entries
                if _is_model_name(e) and os.path.isdir(os.path.join(self.root, e))]

    def _refresh_names(self):
        """Makes models present on disk but never loaded visible in the index."""
        for name in self._model_dirs():
            with self._lock:
                if name not in self._models:
                    model = self._models[name] = _Model(name)
                    model.reason = "not loaded"

    @staticmethod
    def _version_files(model_dir):
        """version number -> (model file path, mtime_ns, size) for complete version directories."""
        found = {}
        for entry in os.listdir(model_dir):
            if not entry.isdigit() or int(entry) < 1:
                continue
            for file_name in MODEL_FILES:
                path = os.path.join(model_dir, entry, file_name)
                try:
                    stat = os.stat(path)
                except OSError:
                    continue
                found[int(entry)] = (path, stat.st_mtime_ns, stat.st_size)
                break
        return found


def _is_model_name(name):
    return bool(name) and not name.startswith(".") and "/" not in name and "\\" not in name \
        and name not in ("..",)
