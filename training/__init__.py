"""Training pipeline of the lip-sync model (torch, eSpeak NG); never imported at run time."""
