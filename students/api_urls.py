from rest_framework.routers import SimpleRouter

from students import apis

router = SimpleRouter()
router.register("departments", apis.DepartmentViewSet)
router.register("programs", apis.ProgramViewSet)
router.register("courses", apis.CourseViewSet)
router.register("terms", apis.TermViewSet)
router.register("sections", apis.SectionViewSet)
router.register("assessments", apis.AssessmentViewSet)
router.register("students", apis.StudentViewSet, basename="student")
router.register("enrollments", apis.EnrollmentViewSet, basename="enrollment")
router.register("grades", apis.GradeViewSet, basename="grade")
router.register("term-outcomes", apis.TermOutcomeViewSet, basename="termoutcome")

urlpatterns = router.urls
