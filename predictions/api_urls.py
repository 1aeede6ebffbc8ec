from rest_framework.routers import SimpleRouter

from predictions import apis

router = SimpleRouter()
router.register("risk-scores", apis.RiskScoreViewSet, basename="riskscore")
router.register("model-versions", apis.ModelVersionViewSet, basename="modelversion")
router.register("scoring-runs", apis.ScoringRunViewSet, basename="scoringrun")

urlpatterns = router.urls
