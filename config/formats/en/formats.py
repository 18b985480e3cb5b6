# Dates as the `day` filter writes them ("1 Dec 2026"), not Django's "Dec. 1, 2026" (issue 13).
DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y, H:i"
YEAR_MONTH_FORMAT = "F Y"
MONTH_DAY_FORMAT = "j F"
# Days typed in a form: ISO (the admin calendar writes it) or as pages write them. Not Django's
# US "04/12/2026", which reads as 12 April to whoever means 4 December.
DATE_INPUT_FORMATS = ["%Y-%m-%d", "%d %b %Y", "%d %B %Y"]
