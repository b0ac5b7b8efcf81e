# -*- coding: utf-8 -*-
"""Comments, odd spacing and a CRLF-free but messy layout: all of it must survive."""
import torch
import torch.nn.functional as F
from torch import nn  # the usual alias


class Messy( nn.Module ):
    """Docstring kept."""
    def __init__( self ,width = 4 ):
        super( ).__init__( )   # base first
        # the only layer
        self.conv=nn.Conv2d(3,width,1)

    def forward(self,x):
        y=self.conv( x )  # conv
        y = F.leaky_relu(y,   0.2)   # keep this comment
        z = (y
             * 2.0)  # a scaled copy
        return torch.cat( ( y , z ), 1 )  # joined
