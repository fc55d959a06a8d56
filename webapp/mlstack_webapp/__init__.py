"""The web app's code: the serving API's HTTP client, image helpers, labels, the sample
images and the settings. The Streamlit page itself is webapp/api.py.

It imports no model code (no mlstack, no scikit-learn): the page only sends image files
to the serving API, and its image stays small.
"""
