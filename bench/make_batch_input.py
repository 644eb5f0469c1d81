"""Writes N embedding requests of 4-16 random token ids as an OpenAI batch file (for di batch) and the same rows as
input_ids + attention_mask [N, 16] int64 in a safetensors file (for di infer). Usage: make_batch_input.py N OUT.jsonl OUT.safetensors"""
import json, random, sys, struct
n=int(sys.argv[1]); out=sys.argv[2]; ids_out=sys.argv[3]
random.seed(5)
rows=[]
with open(out,'w') as f:
    for i in range(n):
        L=random.randrange(4,17)
        p=[random.randrange(5,340) for _ in range(L)]
        rows.append(p)
        f.write(json.dumps({"custom_id":f"r{i}","method":"POST","url":"/v1/embeddings","body":{"input":p}})+"\n")
# safetensors input_ids [n,16] right-padded with attention_mask, for di infer
W=16
ids=[]; mask=[]
for p in rows:
    ids += p+[0]*(W-len(p)); mask += [1]*len(p)+[0]*(W-len(p))
hdr={"input_ids":{"dtype":"I64","shape":[n,W],"data_offsets":[0,8*n*W]},"attention_mask":{"dtype":"I64","shape":[n,W],"data_offsets":[8*n*W,16*n*W]}}
h=json.dumps(hdr).encode(); h+=b' '*((8-len(h)%8)%8)
with open(ids_out,'wb') as f:
    f.write(struct.pack('<Q',len(h))); f.write(h)
    f.write(struct.pack('<%dq'%(n*W),*ids)); f.write(struct.pack('<%dq'%(n*W),*mask))
