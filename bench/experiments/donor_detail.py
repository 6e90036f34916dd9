"""Experiment: how much must change? donors' mean shape and/or donors' texture detail."""
import numpy as np, faceanon, cv2, glob
from PIL import Image
from faceanon.models.facespace.model import face_space
from faceanon.models.facespace import geometry as geo
from faceanon.models.recognizers import recognizer
from faceanon.align import Landmarker
from faceanon.viz import grid, label, save_png
fs=face_space(); lm=Landmarker(68)
rng=np.random.default_rng(0)
def load(p):
    img=np.asarray(Image.open(p).convert('RGB')); f=faceanon.detect(img)[0]; lm(img,[f]); return img,f
donor_paths=sorted(glob.glob('../shared/data/celeba_faces/images/*/*.jpg'))
donor_paths=[donor_paths[i] for i in rng.choice(len(donor_paths),8,replace=False)]
C=128
canon_pts=fs.mean_shape; tris=fs.face_triangles
ids=geo.triangle_id_map(canon_pts, tris, (C,C))
mask=(ids>=0).astype(np.float32)
def shapefree(img,f):
    pts=geo.face_points(f.landmarks68)
    t,_=geo.warp(img.astype(np.float32), pts, canon_pts, tris, (C,C), ids=ids); return t
donors=[load(p) for p in donor_paths]
dtex=np.mean([shapefree(i,f) for i,f in donors],0)
dshape=np.mean([geo.apply_affine(geo.similarity_fit(geo.face_points(f.landmarks68),fs.mean_shape), geo.face_points(f.landmarks68)) for i,f in donors],0)
def lowpass(x,s): return cv2.GaussianBlur(x,(0,0),s)
tests=['../shared/data/lfw/images/Abel_Pacheco/Abel_Pacheco_0001.jpg','../shared/data/lfw/images/AJ_Cook/AJ_Cook_0001.jpg','../shared/data/celeba_faces/images/7204/008995.jpg','../shared/data/lfw/images/Aaron_Sorkin/Aaron_Sorkin_0001.jpg']
tiles=[]
for p in tests:
    img,f=load(p); enc=fs.encode(img,f.landmarks68)
    grey = img.ndim==3 and np.allclose(img[...,0],img[...,1])
    row=[label(cv2.resize(img,(200,200)),'orig')]
    own=shapefree(img,f)
    for name,(use_shape,hp) in {'shape':(True,None),'shape+hp4':(True,4),'hp4':(False,4),'shape+hp2':(True,2)}.items():
        # texture in canonical frame
        tex=own.copy()
        if hp:
            d=dtex.mean(2,keepdims=True).repeat(3,2) if grey else dtex
            tex=lowpass(own,hp)+ (d-lowpass(d,hp))
        new_canon = dshape if use_shape else enc.shape.reshape(-1,2)
        new_pts=geo.apply_affine(cv2.invertAffineTransform(enc.to_canon), new_canon)
        ring=geo.ring_points(enc.points)
        src=np.concatenate([enc.points,ring]); dst=np.concatenate([new_pts,ring])
        h,w=img.shape[:2]
        warped,cov=geo.warp(img,src,dst,fs.triangles,(h,w))
        out=np.where(cov[...,None]>0,warped,img)
        # paste texture at the new geometry inside the face hull
        fid=geo.triangle_id_map(new_pts,tris,(h,w))
        tex_img,fc=geo.warp(np.clip(tex,0,255).astype(np.uint8),canon_pts,new_pts,tris,(h,w),ids=fid)
        a=cv2.GaussianBlur(cv2.erode(fc,np.ones((7,7),np.uint8)),(0,0),3)[...,None]
        out=(tex_img*a+out*(1-a)).astype(np.uint8)
        s={k:float(recognizer(k).embed(img,f)@recognizer(k).embed(out,f)) for k in ('sface','dlib')}
        row.append(label(cv2.resize(out,(200,200)),f"{name} s{s['sface']:.2f} d{s['dlib']:.2f}")); print(p.split("/")[-1], name, {k:round(v,3) for k,v in s.items()})
    tiles+=row
save_png('/tmp/donor.png',grid(tiles,5))
