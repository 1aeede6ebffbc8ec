"""The attendance pages of the portal: lecturers run class sessions and show the rotating QR code,
students check in and follow their attendance. Thin, like students/views.py: reads go through the
scoped selectors (what a viewer may not see is a 404), writes through attendance.services, and every
refusal a service raises is shown with its own message, writing nothing. List pages run a fixed
number of queries whatever the number of rows."""
