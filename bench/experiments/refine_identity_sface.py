# Experiment (issue 4): refine a CFA identity code against the differentiable SFace, judge by dlib.
# Run: python bench/experiments/refine_identity_sface.py [budget]; writes /tmp/opt.png.
import numpy as np, torch, faceanon, cv2, time, sys
from PIL import Image
from faceanon.models.facespace.model import face_space
from faceanon.models.facespace.torch_render import TorchFaceRenderer
from faceanon.models.sface_torch import build_sface
from faceanon.models.recognizers import recognizer
from faceanon.align import Landmarker, ARCFACE_TEMPLATE_112
from faceanon.align.align import similarity_transform
from faceanon.anonymize.identity import rotate_on_sphere, seeded_rotation
from faceanon.viz import grid, label, save_png
torch.set_num_threads(1)
net=build_sface()
paths=['../shared/data/lfw/images/Abel_Pacheco/Abel_Pacheco_0001.jpg','../shared/data/lfw/images/AJ_Cook/AJ_Cook_0001.jpg','../shared/data/celeba_faces/images/7204/008995.jpg']
fs=face_space(); tiles=[]
R=float(sys.argv[1]) if len(sys.argv)>1 else 1.0
for p in paths:
    img=np.asarray(Image.open(p).convert('RGB')); f=faceanon.detect(img)[0]; Landmarker(68)(img,[f])
    enc=fs.encode(img,f.landmarks68)
    r=TorchFaceRenderer(fs,img,enc)
    m=torch.from_numpy(similarity_transform(f.landmarks5, ARCFACE_TEMPLATE_112)).float()
    # affine grid: output 112 crop pixel -> image coords
    minv=torch.from_numpy(cv2.invertAffineTransform(m.numpy())).float()
    ys,xs=torch.meshgrid(torch.arange(112.),torch.arange(112.),indexing='ij')
    src=torch.stack([xs,ys],-1)@minv[:,:2].T+minv[:,2]
    H,W=img.shape[:2]; g=torch.stack([src[...,0]/(W-1)*2-1, src[...,1]/(H-1)*2-1],-1)[None]
    def emb(x): 
        c=torch.nn.functional.grid_sample(x,g,align_corners=True); e=net(c)[0]; return e/e.norm()
    with torch.no_grad(): e0=emb(r.image)
    y0=torch.from_numpy(enc.identity.astype(np.float32))
    radius=max(float(y0.norm()), fs.id_norm_median)
    start=torch.from_numpy(rotate_on_sphere(enc.identity, 90, seeded_rotation(0, fs.id_dims), radius).astype(np.float32))
    y=start.clone().requires_grad_(True)
    opt=torch.optim.Adam([y], lr=0.3)
    t=time.time()
    budget=R*float((start-y0).norm())
    for it in range(15):
        opt.zero_grad(); out=r.render(y); loss=(emb(out)@e0); loss.backward(); opt.step()
        with torch.no_grad():  # project to the budget ball around the original code
            d=y-y0; n=d.norm()
            if n>budget: y.copy_(y0+d*budget/n)
    dt=time.time()-t
    with torch.no_grad(): out0=r.render(start); out1=r.render(y)
    res=[]
    for o in (out0,out1):
        a=o[0].permute(1,2,0).numpy().round().clip(0,255).astype(np.uint8)
        s={k:float(recognizer(k).embed(img,f)@recognizer(k).embed(a,f)) for k in ('sface','dlib')}
        res.append((a,s))
    print(p.split('/')[-1], f'{dt:.1f}s', [ {k:round(v,3) for k,v in s.items()} for _,s in res])
    tiles+= [label(cv2.resize(img,(220,220)),'orig')]+[label(cv2.resize(a,(220,220)),f"s{s['sface']:.2f} d{s['dlib']:.2f}") for a,s in res]
save_png('/tmp/opt.png', grid(tiles,3))
