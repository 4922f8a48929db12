"""`frontend.utils`: torch.utils-style aliases (`frontend.utils.data` is `frontend.data`)."""
from frontend.utils import data  # noqa: F401
