# nbgrader configuration of the CNN course. nbgrader reads this file from the current
# directory: run `nbgrader ...` and `course ...` from the course root (the folder of this file).
# Every setting says why it is here; see ../shared/NBGRADER_NOTES.md-style facts in README.md.
import os

c = get_config()  # noqa: F821 - injected by traitlets when nbgrader loads this file

# ---- Course and folders ---------------------------------------------------------------------
# One id for the exchange and the formgrader; the same on every grader's machine.
c.CourseDirectory.course_id = "cnn-course"
# The course root is this file's folder, wherever nbgrader is started from inside it.
c.CourseDirectory.root = os.environ.get("COURSE_ROOT", os.path.dirname(os.path.abspath(__file__)))
# Layout fixed by the course: sources with solutions and hidden tests, generated releases.
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
# Graders may point at PostgreSQL (several graders at once); SQLite in the course root otherwise.
if os.environ.get("COURSE_DB_URL"):
    c.CourseDirectory.db_url = os.environ["COURSE_DB_URL"]
# Never copied into releases or submissions: editor and cache debris.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".DS_Store"]

# ---- What students receive ------------------------------------------------------------------
# French stubs: the course speaks French to students. The stub raises, which the checks read as
# "Non tenté" and score 0 (never full marks).
c.ClearSolutions.code_stub = {"python": "# VOTRE CODE ICI\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "VOTRE RÉPONSE ICI"
# Hidden tests are removed from releases between these markers (nbgrader's defaults, pinned).
c.ClearHiddenTests.begin_test_delimeter = "BEGIN HIDDEN TESTS"
c.ClearHiddenTests.end_test_delimeter = "END HIDDEN TESTS"
# Releases never carry outputs (they could hold solution results).
c.ClearOutput.remove_metadata_fields = ["collapsed", "scrolled", "deletable", "editable"]

# ---- Autograding: what is trusted -----------------------------------------------------------
# A student who deletes or moves a test cell gets it back from the gradebook, at its release
# position, instead of escaping it (RestoreCellPositions below). nbgrader's own repair is off: it
# re-inserts a deleted cell by the gradebook's row order, which is not the notebook's, so a test
# cell could land before the function it tests (a NameError: correct work scored 0).
c.OverwriteCells.add_missing_cells = False
# Source files (data, helper modules) always overwrite the student's copies, except these.
c.Autograde.exclude_overwriting = {}
# Students and assignments missing from the gradebook are created rather than failing the run.
c.Autograde.create_student = True
# A submission nbgrader cannot read (invalid JSON, empty, binary, not UTF-8, over 100 MiB) or
# whose notebook has another name would fail as a whole, its grades left None with no reason:
# it is graded instead as a placeholder stating the reason, every test cell 0 with that reason.
c.Autograde.exporter_class = "autograder.grading.submissions.SubmissionExporter"
c.Autograde.pre_convert_hook = "autograder.grading.submissions.expect_assignment_notebooks"

# ---- Hardened grading (student code is untrusted; see autograder/grading/) -------------------
# Sanitize pass: drop execution-control metadata/tags first (a `skip-execution` tag on a test
# cell would leave it without output, which nbgrader scores as full marks), then nbgrader's own
# steps, which restore locked and hidden test cells from the gradebook, then deleted or moved
# graded/locked cells back at their release position (noted on each such test cell).
c.Autograde.sanitize_preprocessors = [
    "autograder.grading.preprocessors.StripExecutionControls",
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "nbgrader.preprocessors.OverwriteCells",
    "autograder.grading.preprocessors.RestoreCellPositions",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# Grade pass: GuardedExecute replaces Execute (guard around test cells, score verification,
# recovery after a kernel death or a stuck kernel); the rest is nbgrader's default list.
c.Autograde.autograde_preprocessors = [
    "autograder.grading.preprocessors.GuardedExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# Every notebook runs in the sandboxed kernel (bubblewrap: no network, read-only system, only
# its own folder writable, gradebook/sources/other students hidden, resource limits). Its
# kernelspec ships in the package; JUPYTER_PATH makes jupyter_client find it.
_kernels = os.path.join(c.CourseDirectory.root, "autograder", "grading", "jupyter")
try:
    import autograder.grading as _grading

    _kernels = os.path.join(os.path.dirname(_grading.__file__), "jupyter")
except ImportError:  # the course package is not installed: nbgrader's plain kernel, unguarded
    _kernels = None
if _kernels:
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [_kernels, os.environ.get("JUPYTER_PATH")]))
    c.Execute.kernel_name = "course-sandbox"
    # nbgrader's client recompiles every SQL query and re-checks a JSON schema per cell: cache
    # both (same queries, same validation; ~0.5 CPU-s less per notebook; autograder/grading/speedups.py).
    from autograder.grading import speedups as _speedups

    _speedups.install()
    # nbclient's wait for each kernel drains IOPub until 0.2 s pass in silence: stop at the
    # kernel's own `idle` instead (~0.3 s less per notebook; autograder/grading/ready_client.py).
    c.AsyncKernelManager.client_class = "autograder.grading.ready_client.ReadyClient"
# The sandboxed kernel has no network, not even the client's loopback: talk over Unix sockets.
c.KernelManager.transport = "ipc"
# Its sockets live in a private folder of this grading process (bound into the sandbox), never
# in a shared one such as /tmp, which the kernel must not see.
# (The kernel launcher creates the folder, mode 700, when the first kernel starts.)
import secrets as _secrets  # noqa: E402
import tempfile as _tempfile  # noqa: E402

c.KernelManager.ip = os.path.join(
    _tempfile.gettempdir(), f"course-ipc-{os.getpid()}-{_secrets.token_hex(4)}", "kernel"
)
import atexit as _atexit  # noqa: E402
import shutil as _shutil  # noqa: E402

_atexit.register(_shutil.rmtree, os.path.dirname(c.KernelManager.ip), True)
if _kernels:  # and those of grading processes that were killed before their exit
    from autograder.grading.sandbox_kernel import sweep_stale_private_folders

    sweep_stale_private_folders()
# A grader with an NVIDIA GPU may let its grading kernels use it (the training cells of modules
# 4-7 then run on CUDA): COURSE_SANDBOX_GPU=1 binds the host's NVIDIA device nodes into the
# sandbox (`course doctor` says whether kernels see a GPU). Off by default: the kernel's /dev is
# bubblewrap's minimal one.
os.environ.setdefault("COURSE_SANDBOX_GPU", "0")
# The kernel must know what to hide: the course root (gradebook, sources, every submission).
os.environ["COURSE_ROOT"] = c.CourseDirectory.root
# Refuse to autograde on a host that cannot sandbox, unless told (`COURSE_UNSAFE=1`, which
# `course grade --unsafe` sets): say why once, clearly, instead of failing per notebook.
import sys as _sys  # noqa: E402

if _kernels and "autograde" in _sys.argv and os.environ.get("COURSE_UNSAFE") != "1":
    from autograder.grading.sandbox_kernel import probe as _probe

    _host = _probe()
    if not _host["works"]:
        _sys.exit(
            f"course: this host cannot sandbox grading kernels ({_host['reason']}). Install "
            "bubblewrap, or accept the risk explicitly with COURSE_UNSAFE=1 (course grade --unsafe)."
        )

# ---- Late submissions and feedback ---------------------------------------------------------
# A submission after the assignment's due date scores 0; its raw score stays in the gradebook so
# a TA can waive the penalty. Set due dates with:
#   nbgrader db assignment add ID --duedate="2026-12-01 23:59 Europe/Paris"
c.LateSubmissionPlugin.penalty_method = "zero"
# Feedback never shows hidden tests (nbgrader #917): locked cells show their release version.
c.GenerateFeedback.preprocessors = [
    "autograder.reports.feedback.HideHiddenTests",
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
# Feedback pages work offline and speak French (opened from disk, copied, or fetched through the
# exchange, which copies each .html file alone): the course's page is nbgrader's own with MathJax inlined from
# the installed django-static-mathjax package instead of nbconvert's CDN <script>, whatever
# HTMLExporter.mathjax_url says (nbgrader's template ignores it); see autograder/reports/feedback.py.
if _kernels:
    from autograder.reports.feedback import exporter_config as _feedback_exporter

    # template_name "feedback" (nbgrader's template; its folder must be named: nbgrader adds it
    # only when unset), template_file: the course's page, which extends it with MathJax inlined
    # and French labels and numbers; extra_template_basedirs: the course's templates first (its
    # feedback/mathjax.html.j2 replaces nbconvert's CDN loader), then nbgrader's; filters: the
    # one that inlines MathJax and refuses any remote URL in the head, French numbers.
    for _key, _value in _feedback_exporter().items():
        setattr(c.HTMLExporter, _key, _value)

# ---- Execution --------------------------------------------------------------------------------
# Training cells of modules 4-7 run up to ~60 s on 2 CPU cores; 5 min leaves room for a loaded
# grading machine (COURSE_CELL_TIMEOUT overrides, e.g. in tests). A cell past the limit is
# interrupted, scores 0 and execution goes on.
c.Execute.timeout = int(os.environ.get("COURSE_CELL_TIMEOUT", "300"))
c.Execute.interrupt_on_timeout = True
# Once a notebook is graded its kernel has nothing left to save: kill it rather than wait for a
# graceful shutdown (saves ~0.5 s per notebook; a hostile kernel may also never comply).
c.Execute.shutdown_kernel = "immediate"
# The kernel may take time to start when TensorFlow and PyTorch are imported by the first cell.
c.Execute.startup_timeout = 120
# Quiet frameworks in the grading kernel (it inherits this environment): their import-time
# logs on stderr would zero a test cell.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("PYTHONWARNINGS", "ignore")
# Data sets are found offline (see `course data`): no download attempt during grading.
os.environ.setdefault("COURSE_OFFLINE", "1")

# ---- Outputs ----------------------------------------------------------------------------------
# An output bomb cannot fill the gradebook or feedback: long streams are cut.
c.LimitOutput.max_lines = 1000
c.LimitOutput.max_traceback = 100
# Framework chatter that still reaches stderr in a test cell would score it 0: these lines are
# dropped before scoring (nbgrader >= 0.9.4; off unless enabled). nbgrader drops a whole stderr
# output when the pattern is found in it; the score itself is computed by the check library, so
# this can only spare a cell from framework noise, never raise a score.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = (
    r"(?:"
    r"[IWE]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ \S+\.cc:\d+\]"  # absl/TF C++ log lines
    r"|.*oneDNN custom operations are on"
    r"|.*TF_ENABLE_ONEDNN_OPTS"
    r"|.*This TensorFlow binary is optimized"
    r"|.*Unable to register cu(?:DNN|FFT|BLAS) factory"
    r"|.*computation placer already registered"
    r"|.*could not open file to read NUMA node"
    r"|WARNING: All log messages before absl::InitializeLog"
    r"|.*(?:User|Deprecation|Future|Runtime)Warning:"
    r"|\s+warnings\.warn\("
    r")"
)
