import json

from tests.conftest import AUTH


def test_recommendations_for_a_known_user_are_personalized_and_decorated(client):
    response = client.http.get("/recommendations?user_id=u1&num_results=5", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["X-Recommendation-Source"] == "personalized"
    items = json.loads(response.body)
    assert len(items) == 5
    assert set(items[0]) >= {"id", "url", "name", "price", "image"}
    # u1 prefers kitchen (1 % 3): most of its recommendations come from that category.
    assert sum(item["category"] == "kitchen" for item in items) >= 3
