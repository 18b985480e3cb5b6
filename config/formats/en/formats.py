# Dates as the `day` filter writes them ("1 Dec 2026"), not Django's "Dec. 1, 2026" (issue 13).
DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y, H:i"
YEAR_MONTH_FORMAT = "F Y"
MONTH_DAY_FORMAT = "j F"
