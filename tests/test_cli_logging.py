"""The command line configures the library's logging: warnings by default, INFO with -v, DEBUG with -vv."""

import logging

from reprozoo.cli import main


def test_verbose_flags_set_the_library_log_level(capsys):
    logger = logging.getLogger("reprozoo")
    for argv, level in ((["list"], logging.WARNING), (["-v", "list"], logging.INFO),
                        (["-vv", "list"], logging.DEBUG)):
        assert main(argv) == 0
        assert logger.level == level
    handlers = [h for h in logger.handlers if getattr(h, "_reprozoo_cli", False)]
    assert len(handlers) == 1  # configured once, not once per call
    logging.getLogger("reprozoo.tvqvae.estimator").info("fit: 3 documents")
    assert "INFO reprozoo.tvqvae.estimator: fit: 3 documents" in capsys.readouterr().err
    logger.setLevel(logging.WARNING)
    for h in handlers:  # it writes to this test's captured stderr
        logger.removeHandler(h)
