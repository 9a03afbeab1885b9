"Turn results folders into tables (mean, CI, fold-aware paired contrasts with Holm-corrected p-values and verdicts) and plots"
from . import baselines, compare, folders, markdown, plots, pooled, sections, statistics, verdicts
from .baselines import *
from .compare import *
from .folders import *
from .markdown import *
from .plots import *
from .pooled import *
from .statistics import *
from .verdicts import *

__all__ = [*statistics.__all__, *verdicts.__all__, *folders.__all__, *compare.__all__, *baselines.__all__,
           *plots.__all__, *markdown.__all__, *pooled.__all__]
