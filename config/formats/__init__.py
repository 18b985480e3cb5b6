"""Date formats the admin shows (FORMAT_MODULE_PATH): one unambiguous form across locales."""
